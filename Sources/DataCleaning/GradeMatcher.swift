import DiamondSchema

/// Matches grade labels in bytes, with the same meaning as `Grade.init(label:)` (case and
/// surrounding spaces and tabs ignored) but without making a `String` for ASCII input.
///
/// Each level's lower-case label is packed into two words, so matching a field is a few
/// integer compares with no reference counting.
struct GradeMatcher<G: Grade>: Sendable {
    private struct Key: Sendable {
        var low: UInt64
        var high: UInt64
        var length: Int
        var code: UInt8
    }

    /// Labels up to this many bytes are packed; every label of the schema fits.
    private static var maxPackedLength: Int { 16 }

    private let keys: [Key]

    init() {
        keys = G.allCases.map { level in
            let bytes = Array(level.label.lowercased().utf8)
            precondition(bytes.count <= Self.maxPackedLength, "grade label too long to pack: \(level.label)")
            let (low, high) = bytes.withUnsafeBufferPointer { Self.pack($0, lowercasing: false) }
            return Key(low: low, high: high, length: bytes.count, code: level.rawValue)
        }
    }

    /// The ordinal code of the level named by `text`, or nil.
    @inline(__always)
    func code(_ text: UnsafeBufferPointer<UInt8>) -> UInt8? {
        var start = 0
        var end = text.count
        while start < end, text[start] == Byte.space || text[start] == Byte.tab { start += 1 }
        while end > start, text[end - 1] == Byte.space || text[end - 1] == Byte.tab { end -= 1 }
        let trimmed = UnsafeBufferPointer(rebasing: text[start..<end])
        if trimmed.count <= Self.maxPackedLength {
            let (low, high) = Self.pack(trimmed, lowercasing: true)
            for key in keys where key.low == low && key.high == high && key.length == trimmed.count {
                return key.code
            }
        }
        guard trimmed.contains(where: { $0 >= 0x80 }) else { return nil }
        // Non-ASCII text: defer to the schema's own (Unicode-aware) matching.
        return G(label: String(decoding: trimmed, as: UTF8.self))?.rawValue
    }

    /// Up to 16 bytes packed little-endian into two words, zero-padded (so keys also compare
    /// lengths).
    @inline(__always)
    private static func pack(_ bytes: UnsafeBufferPointer<UInt8>, lowercasing: Bool) -> (UInt64, UInt64) {
        var low: UInt64 = 0, high: UInt64 = 0
        for i in 0..<bytes.count {
            var b = bytes[i]
            if lowercasing, b &- UInt8(ascii: "A") < 26 { b |= 0x20 }
            if i < 8 {
                low |= UInt64(b) << (8 * UInt64(i))
            } else {
                high |= UInt64(b) << (8 * UInt64(i - 8))
            }
        }
        return (low, high)
    }
}
