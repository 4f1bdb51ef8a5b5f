import Crypto
import Foundation

/// A partner's bearer token: `loupe_<id>_<secret>_<checksum>`.
///
/// - `id`: 12 base62 characters (about 71 random bits), public: it names the token in lists,
///   logs and the audit table.
/// - `secret`: 32 base62 characters (about 190 random bits). Only its SHA-256 is stored; the
///   raw token is shown once, when it is created.
/// - `checksum`: CRC-32 of everything before it, as 6 base62 characters, so a mistyped or
///   made-up string is rejected by `parse` before any store lookup.
///
/// 58 characters in all, e.g. `loupe_3kTq9ZcW1bYx_Vn…_0xK2aQ`. The type keeps the secret in
/// memory only as long as it is needed and never prints it (`description` shows the id).
public struct AccessToken: Sendable, Hashable, CustomStringConvertible {
    /// The public id.
    public let id: String
    /// The secret part; never log it.
    public let secret: String

    /// The prefix every token starts with (so secret scanners and people recognise it).
    public static let prefix = "loupe"
    /// Characters of the id.
    public static let idLength = 12
    /// Characters of the secret.
    public static let secretLength = 32
    /// Characters of the checksum.
    public static let checksumLength = 6
    /// Characters of a whole token.
    public static let length = prefix.count + 3 + idLength + secretLength + checksumLength

    /// Why a string is not a token (no part of the string is kept, so this is safe to log).
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Not `loupe_<12 base62>_<32 base62>_<6 base62>`.
        case malformed(String)
        /// The shape is right but the checksum does not match: mistyped or made up.
        case badChecksum

        public var description: String {
            switch self {
            case .malformed(let why): "the token is malformed (\(why)); a Loupe token looks like loupe_<id>_<secret>_<checksum>"
            case .badChecksum: "the token's checksum does not match: it was mistyped or cut short"
            }
        }
    }

    /// A token with a fresh random id and secret.
    public static func generate() -> AccessToken {
        var generator = SystemRandomNumberGenerator()
        return AccessToken(
            id: Base62.random(count: idLength, using: &generator),
            secret: Base62.random(count: secretLength, using: &generator))
    }

    /// Parses and checks a presented token: shape, alphabet, lengths, checksum. Cheap, and
    /// touches no store.
    public static func parse(_ text: String) throws(ParseError) -> AccessToken {
        let bytes = Array(text.utf8)
        guard bytes.count == length else { throw .malformed("\(bytes.count) characters, expected \(length)") }
        let parts = bytes.split(separator: UInt8(ascii: "_"), omittingEmptySubsequences: false)
        guard parts.count == 4, Array(parts[0]) == Array(prefix.utf8) else {
            throw .malformed("it does not start with \(prefix)_ or has the wrong number of parts")
        }
        guard parts[1].count == idLength, parts[2].count == secretLength, parts[3].count == checksumLength,
            parts[1...].allSatisfy({ $0.allSatisfy(Base62.contains) })
        else { throw .malformed("a part has the wrong length or a character outside 0-9, A-Z, a-z") }
        let body = Array(bytes[0..<(length - checksumLength - 1)])
        guard Base62.encode(CRC32.checksum(body), width: checksumLength) == String(decoding: parts[3], as: UTF8.self)
        else { throw .badChecksum }
        return AccessToken(id: String(decoding: parts[1], as: UTF8.self), secret: String(decoding: parts[2], as: UTF8.self))
    }

    /// A token from its parts (for tests and `generate`).
    public init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }

    /// The whole token, as the partner presents it. Show it once; never log it.
    public var rawValue: String {
        let body = "\(Self.prefix)_\(id)_\(secret)"
        return body + "_" + Base62.encode(CRC32.checksum(Array(body.utf8)), width: Self.checksumLength)
    }

    /// The stored form of the secret: SHA-256, lowercase hex.
    public var secretHash: String { Self.hash(secret: secret) }

    /// SHA-256 of a secret, lowercase hex.
    public static func hash(secret: String) -> String {
        SHA256.hash(data: Array(secret.utf8)).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    /// Whether this token's secret hashes to `storedHash`, compared in constant time.
    public func matches(storedHash: String) -> Bool {
        let given = Array(secretHash.utf8)
        let stored = Array(storedHash.utf8)
        var difference = UInt8(given.count == stored.count ? 0 : 1)
        for i in 0..<min(given.count, stored.count) { difference |= given[i] ^ stored[i] }
        return difference == 0
    }

    /// `token <id>` — never the secret.
    public var description: String { "token \(id)" }
}

/// Base62 (0-9, A-Z, a-z).
enum Base62 {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func contains(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    /// `count` uniformly random characters (rejection sampling: no modulo bias).
    static func random(count: Int, using generator: inout some RandomNumberGenerator) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let byte = UInt8.random(in: 0...255, using: &generator)
            if byte < 248 { out.append(alphabet[Int(byte % 62)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `value` in base62, left-padded with "0" to `width` characters.
    static func encode(_ value: UInt32, width: Int) -> String {
        var digits: [UInt8] = []
        var rest = value
        repeat {
            digits.append(alphabet[Int(rest % 62)])
            rest /= 62
        } while rest > 0
        while digits.count < width { digits.append(alphabet[0]) }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }
}

/// CRC-32 (IEEE 802.3, as zlib and PNG).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
