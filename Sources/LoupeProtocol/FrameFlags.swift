/// The flags byte of a frame header (`loupe.v1.FrameFlag`).
///
/// A valid frame has exactly one of `request` and `response`; `error` only with `response`
/// (the payload is then a `Status`); the reserved high bits are zero.
public struct FrameFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The byte on the wire.
    public var rawValue: UInt8

    /// Creates flags from the byte on the wire.
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// A client-to-server call; the payload is the method's request message.
    public static let request = FrameFlags(rawValue: 0x01)
    /// A server-to-client reply; the payload is the method's response message (or a `Status`
    /// with `error`).
    public static let response = FrameFlags(rawValue: 0x02)
    /// With `response`: the call failed and the payload is a `loupe.v1.Status`.
    public static let error = FrameFlags(rawValue: 0x04)
    /// Reserved for a compressed payload; version 1 peers never set it and answer a frame that
    /// has it with `UNIMPLEMENTED`.
    public static let compressed = FrameFlags(rawValue: 0x08)
    /// The bits version 1 does not define; they must be zero.
    public static let reserved = FrameFlags(rawValue: 0xF0)

    /// The set flags by name, e.g. `[response, error]`.
    public var description: String {
        var names: [String] = []
        if contains(.request) { names.append("request") }
        if contains(.response) { names.append("response") }
        if contains(.error) { names.append("error") }
        if contains(.compressed) { names.append("compressed") }
        let unknown = rawValue & FrameFlags.reserved.rawValue
        if unknown != 0 { names.append("reserved(0x\(String(unknown, radix: 16)))") }
        return "[" + names.joined(separator: ", ") + "]"
    }
}
