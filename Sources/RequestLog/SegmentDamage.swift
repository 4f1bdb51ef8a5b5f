/// Where a segment stopped being readable.
public struct SegmentDamage: Sendable, Hashable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Byte offset of the first bad frame (everything before it was read).
    public var offset: Int
    /// Records read before it.
    public var recordsBefore: Int
    public var reason: String

    public var description: String {
        "\(path): record \(recordsBefore + 1) at byte \(offset) is \(reason); the \(recordsBefore) records before it were read"
    }
}
