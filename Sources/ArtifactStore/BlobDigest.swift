import Crypto

/// The name of a blob: the SHA-256 of its raw (uncompressed) content.
///
/// Written as `sha256:<64 lowercase hex digits>` in manifests and messages; ``hex`` is the bare
/// digest used in file names.
public struct BlobDigest: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The 64 lowercase hex digits.
    public let hex: String

    /// Parses `sha256:<hex>` or bare `<hex>` (64 hex digits, any case); nil otherwise.
    public init?(_ text: String) {
        var body = Substring(text)
        if body.hasPrefix("sha256:") { body = body.dropFirst(7) }
        guard body.utf8.count == 64, body.utf8.allSatisfy({ BlobDigest.isHexDigit($0) }) else { return nil }
        self.hex = body.lowercased()
    }

    /// The digest of `bytes`.
    public init(of bytes: UnsafeRawBufferPointer) {
        self.init(SHA256.hash(data: bytes))
    }

    /// The digest of `bytes`.
    public init(of bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { BlobDigest(of: $0) }
    }

    init(_ digest: SHA256.Digest) {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        self.hex = String(decoding: text, as: UTF8.self)
    }

    /// `sha256:<hex>`.
    public var description: String { "sha256:\(hex)" }

    public static func < (lhs: BlobDigest, rhs: BlobDigest) -> Bool { lhs.hex < rhs.hex }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = BlobDigest(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected sha256:<64 hex digits>, got \"\(text)\"")
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
    }
}
