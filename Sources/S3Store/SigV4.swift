import Crypto
import Foundation

// Why this is written by hand: the machines Loupe builds on mirror a fixed set of Swift packages,
// and no AWS SDK (aws-sdk-swift, Soto) is among them. What the store needs is small — SigV4
// header signing of a handful of S3 REST calls — so it is done here over swift-crypto's
// HMAC-SHA256 and SHA-256, and checked against AWS's published examples (SigV4Tests).
//
// Reference: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API reference
// and the general "Signature Version 4 signing process" (canonical request → string to sign →
// signing key → signature).

/// AWS credentials: an access key pair and, for temporary credentials, a session token.
///
/// Its `description` never shows the secret or the token (nor the whole key id), so it can be
/// interpolated into a message or a log line without leaking anything.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "access key \(accessKeyID.prefix(4))…\(sessionToken == nil ? "" : " (temporary)")"
    }

    public var debugDescription: String { description }

    /// The strings that must never appear in a message.
    var secrets: [String] { [secretAccessKey, accessKeyID] + (sessionToken.map { [$0] } ?? []) }
}

/// A SigV4 signer for one region and service (`s3`).
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty payload, in hex.
    public static let emptyPayloadHash = hex(SHA256.hash(data: [UInt8]()))

    /// What signing produced: the headers to send, and the intermediate strings (for tests).
    public struct Signed: Sendable {
        public var headers: [(name: String, value: String)]
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        public var authorization: String
    }

    /// Signs a request.
    ///
    /// - Parameters:
    ///   - method: `GET`, `PUT`, …
    ///   - path: the URI path exactly as sent, already percent-encoded (`/bucket/key`).
    ///   - query: query parameters, not encoded (they are encoded here, as they must be sent:
    ///     see ``canonicalQuery(_:)``).
    ///   - headers: the headers to sign, `host` among them. `x-amz-date` (and, with a session
    ///     token, `x-amz-security-token`) are added; for S3, so is `x-amz-content-sha256`.
    ///   - payloadHash: hex SHA-256 of the body (or `UNSIGNED-PAYLOAD`).
    ///   - date: the signing time.
    ///   - addContentHashHeader: S3 requires `x-amz-content-sha256`; other services do not.
    public func sign(
        method: String, path: String, query: [(String, String)], headers: [(name: String, value: String)],
        payloadHash: String, date: Date, addContentHashHeader: Bool = true
    ) -> Signed {
        let (amzDate, day) = Self.timestamps(date)
        var all = headers
        all.append(("x-amz-date", amzDate))
        if addContentHashHeader, !all.contains(where: { $0.name.lowercased() == "x-amz-content-sha256" }) {
            all.append(("x-amz-content-sha256", payloadHash))
        }
        if let token = credentials.sessionToken { all.append(("x-amz-security-token", token)) }

        // Canonical headers: lower-case names, trimmed values with inner runs of spaces collapsed,
        // sorted by name; repeated names joined with commas.
        var grouped: [String: [String]] = [:]
        for (name, value) in all {
            grouped[name.lowercased(), default: []].append(Self.normalise(value))
        }
        let names = grouped.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method, path.isEmpty ? "/" : path, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let key = signingKey(day: day)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        all.append(("Authorization", authorization))
        return Signed(
            headers: all, canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
            authorization: authorization)
    }

    /// HMAC chain: `AWS4<secret>` → date → region → service → `aws4_request`.
    func signingKey(day: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
        let secret = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        return mac(mac(mac(mac(secret, day), region), service), "aws4_request")
    }

    /// `key=value` pairs, each URI-encoded, sorted by key then value, joined with `&` (the same
    /// string goes on the wire, so what is signed is what is sent).
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in query {
            pairs.append((uriEncode(name, keepSlash: false), uriEncode(value, keepSlash: false)))
        }
        pairs.sort { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        var parts: [String] = []
        for pair in pairs { parts.append(pair.name + "=" + pair.value) }
        return parts.joined(separator: "&")
    }

    /// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, everything else becomes
    /// `%XX` (upper-case hex) of its UTF-8 bytes; `/` stays in paths (object keys).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        let digits = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == 0x2F) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out.append("%")
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 15)]))
            }
        }
        return out
    }

    /// A-Z a-z 0-9 - . _ ~
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: return true
        default: return false
        }
    }

    private static func normalise(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }

    /// `20130524T000000Z` and `20130524`, in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        return ("\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z", day)
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
