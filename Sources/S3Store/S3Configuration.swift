import ArtifactStore
import Foundation

/// Where an S3-backed store lives and how to reach it.
///
/// Built from `s3://BUCKET/PREFIX` and the environment the way the AWS CLI reads it
/// (``fromEnvironment(url:environment:)``), or field by field in tests.
public struct S3Configuration: Sendable, CustomStringConvertible {
    /// How the bucket appears in URLs.
    public enum Addressing: String, Sendable {
        /// `https://endpoint/BUCKET/key`: what MinIO, Ceph RGW, moto and other endpoints given
        /// by URL expect.
        case path
        /// `https://BUCKET.s3.REGION.amazonaws.com/key`: AWS's default.
        case virtualHosted
    }

    /// The bucket.
    public var bucket: String
    /// The key prefix the store lives under: empty, or ending in `/`.
    public var prefix: String
    /// The signing region.
    public var region: String
    /// `http` or `https`.
    public var scheme: String
    /// The endpoint host (without the bucket for virtual-hosted addressing).
    public var host: String
    /// The port, when not the scheme's default.
    public var port: Int?
    public var addressing: Addressing
    public var credentials: S3Credentials

    /// Blobs larger than this go up in parts of this size (multipart upload); S3's minimum part
    /// is 5 MiB, except the last.
    public var partSize: Int
    /// Attempts per request (1 = no retry) on 5xx, 429, timeouts and connection errors.
    public var maxAttempts: Int
    /// The first retry's delay; doubled each time, up to ``maximumBackoff``, with jitter.
    public var initialBackoff: Duration
    public var maximumBackoff: Duration
    /// How long one request may take (connect to last byte), body size aside: see
    /// ``requestTimeout(forBodyBytes:)``.
    public var requestTimeout: Duration
    /// How long the store lock's lease lasts without renewal (its holder renews it every third).
    public var leaseDuration: Duration
    /// How long `withExclusiveLock` waits for a lease held by a live holder before failing.
    public var lockWaitLimit: Duration
    /// Staging uploads older than this count as abandoned (reported by verify, removed on open).
    public var abandonedAfter: Duration
    /// Max keys per ListObjectsV2 page (S3's maximum is 1000; tests use a small one).
    public var listPageSize: Int

    public init(
        bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
        credentials: S3Credentials, partSize: Int = 8 << 20, maxAttempts: Int = 5,
        initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(5),
        requestTimeout: Duration = .seconds(60), leaseDuration: Duration = .seconds(30),
        lockWaitLimit: Duration = .seconds(900), abandonedAfter: Duration = .seconds(24 * 3600), listPageSize: Int = 1000
    ) throws {
        guard Self.isValidBucket(bucket) else {
            throw StoreError(.invalidArgument, "\"\(bucket)\" is not a valid S3 bucket name (3–63 characters: a-z 0-9 . -)")
        }
        self.bucket = bucket
        var prefix = prefix
        while prefix.hasPrefix("/") { prefix.removeFirst() }
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        self.prefix = prefix
        self.region = region
        self.credentials = credentials
        if let endpoint {
            guard let url = URLComponents(string: endpoint), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
            else {
                throw StoreError(.invalidArgument, "the S3 endpoint \"\(endpoint)\" is not an http(s) URL")
            }
            self.scheme = scheme
            self.host = host
            self.port = url.port
            self.addressing = .path
        } else {
            self.scheme = "https"
            self.host = "s3.\(region).amazonaws.com"
            self.port = nil
            // Bucket names with dots do not match the wildcard certificate of a virtual host.
            self.addressing = bucket.contains(".") ? .path : .virtualHosted
        }
        self.partSize = max(5 << 20, partSize)
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.requestTimeout = requestTimeout
        self.leaseDuration = leaseDuration
        self.lockWaitLimit = lockWaitLimit
        self.abandonedAfter = abandonedAfter
        self.listPageSize = max(1, min(1000, listPageSize))
    }

    /// Parses `s3://BUCKET[/PREFIX]` and reads the rest as the AWS CLI does:
    ///
    /// - endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS
    ///   (`https://s3.REGION.amazonaws.com`, virtual-hosted); a given endpoint uses path-style
    ///   addressing (MinIO, Ceph RGW, moto);
    /// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
    /// - credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    public static func fromEnvironment(url: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> S3Configuration
    {
        guard let location = parse(url) else {
            throw StoreError(.invalidArgument, "\"\(url)\" is not an S3 store URL (s3://BUCKET or s3://BUCKET/PREFIX)")
        }
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let keyID = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw StoreError(
                .invalidArgument,
                "no credentials for s3://\(location.bucket): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                    + "(and AWS_SESSION_TOKEN for temporary credentials)")
        }
        return try S3Configuration(
            bucket: location.bucket, prefix: location.prefix,
            region: value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1",
            endpoint: value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL"),
            credentials: S3Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
    }

    /// `s3://bucket/prefix` → bucket and prefix; nil when it is not such a URL.
    public static func parse(_ url: String) -> (bucket: String, prefix: String)? {
        guard url.lowercased().hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { return nil }
        return (String(bucket), String(rest.dropFirst(bucket.count).drop { $0 == "/" }))
    }

    static func isValidBucket(_ name: String) -> Bool {
        guard (3...63).contains(name.utf8.count), let first = name.utf8.first, let last = name.utf8.last else { return false }
        func alnum(_ c: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }
        return alnum(first) && alnum(last)
            && name.utf8.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// The `Host` header value.
    var hostHeader: String {
        let base = addressing == .virtualHosted ? "\(bucket).\(host)" : host
        guard let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) else { return base }
        return "\(base):\(port)"
    }

    /// The encoded path for an object key (the full key, prefix included), or for the bucket.
    func path(forKey key: String?) -> String {
        let encoded = key.map { SigV4Signer.uriEncode($0, keepSlash: true) }
        switch addressing {
        case .path: return "/\(bucket)" + (encoded.map { "/" + $0 } ?? "")
        case .virtualHosted: return "/" + (encoded ?? "")
        }
    }

    /// The endpoint, for messages (no credentials in it).
    public var endpointDescription: String { "\(scheme)://\(hostHeader)" }

    /// `s3://bucket/prefix`.
    public var url: String { "s3://\(bucket)/\(prefix)" }

    public var description: String { "\(url) (endpoint \(endpointDescription), region \(region))" }

    /// A request's deadline: the base timeout plus a second per MiB of body (at least 1 MiB/s).
    func requestTimeout(forBodyBytes bytes: Int) -> Duration {
        requestTimeout + .seconds(Int64(bytes >> 20))
    }
}
