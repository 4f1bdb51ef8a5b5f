import ArtifactStore
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A failed S3 call: what was asked, what came back. Its description names the bucket and key
/// and never any credential (the server's message is scrubbed of them as well).
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// The HTTP status, or nil when no response came (connection refused, timeout).
    public var status: Int?
    /// S3's error code (`NoSuchKey`, `PreconditionFailed`, `InvalidAccessKeyId`, …).
    public var code: String?
    /// What failed: `PUT s3://bucket/key`.
    public var operation: String
    /// S3's message, or the transport error.
    public var message: String
    /// Attempts made.
    public var attempts: Int

    public var description: String {
        var text = operation + ": "
        if let status { text += "HTTP \(status)" + (code.map { " \($0)" } ?? "") } else { text += "no response" }
        if !message.isEmpty { text += ": " + message }
        if attempts > 1 { text += " (after \(attempts) attempts)" }
        return text
    }

    var isAccessDenied: Bool { status == 401 || status == 403 }
}

/// One S3 reply, body read in full.
struct S3Response: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    /// How many attempts it took (more than 1: an earlier one may have taken effect).
    var attempts: Int

    var etag: String? { headers.first(name: "etag") }
    var ok: Bool { (200..<300).contains(status) }
}

/// A request to send: method, full object key (nil for the bucket), query, extra headers, body.
struct S3Request: Sendable {
    var method: HTTPMethod
    var key: String?
    var query: [(String, String)] = []
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []

    init(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.key = key
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// The S3 REST calls the store makes, signed with SigV4, sent over async-http-client, retried
/// with exponential backoff on transient failures, waited for synchronously (``HTTPBridge``).
final class S3Client: Sendable {
    let configuration: S3Configuration
    let signer: SigV4Signer

    init(configuration: S3Configuration) {
        self.configuration = configuration
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
    }

    /// `s3://bucket/key`, for messages.
    func describe(_ key: String?) -> String { "s3://\(configuration.bucket)/\(key ?? "")" }

    // MARK: Sending

    /// Builds and signs the HTTP request for one attempt (signed anew each time: the date moves).
    func httpRequest(_ request: S3Request) throws -> HTTPClient.Request {
        let path = configuration.path(forKey: request.key)
        let payloadHash = SigV4Signer.hex(SHA256.hash(data: request.body))
        var headers = request.headers
        headers.append(("host", configuration.hostHeader))
        let signed = signer.sign(
            method: request.method.rawValue, path: path, query: request.query, headers: headers, payloadHash: payloadHash,
            date: Date())
        let query = SigV4Signer.canonicalQuery(request.query)
        let url = "\(configuration.scheme)://\(configuration.hostHeader)\(path)" + (query.isEmpty ? "" : "?" + query)
        var http = try HTTPClient.Request(url: url, method: request.method)
        for (name, value) in signed.headers { http.headers.replaceOrAdd(name: name, value: value) }
        if !request.body.isEmpty || request.method == .PUT || request.method == .POST {
            http.body = .bytes(request.body)
        }
        return http
    }

    /// One attempt, body collected; completes on the I/O threads.
    func attempt(_ request: S3Request) -> EventLoopFuture<S3Response> {
        let http: HTTPClient.Request
        do {
            http = try httpRequest(request)
        } catch {
            return HTTPBridge.group.any().makeFailedFuture(error)
        }
        let timeout = configuration.requestTimeout(forBodyBytes: request.body.count)
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
            + timeout.components.attoseconds / 1_000_000_000)
        return HTTPBridge.client.execute(request: http, deadline: deadline).map { response in
            var body: [UInt8] = []
            if var buffer = response.body { body = buffer.readBytes(length: buffer.readableBytes) ?? [] }
            return S3Response(status: Int(response.status.code), headers: response.headers, body: body, attempts: 1)
        }
    }

    /// Sends `request`, retrying transient failures (5xx, 429, request timeouts, connection
    /// errors) with exponential backoff and jitter. Any other reply — success, 404, 412, 403 — is
    /// returned as it is; only a transport failure on the last attempt throws (an ``S3Error``).
    func send(_ request: S3Request) throws -> S3Response {
        var attempt = 1
        while true {
            do {
                var response = try HTTPBridge.blockingWait(self.attempt(request))
                response.attempts = attempt
                if attempt < configuration.maxAttempts, Self.isTransient(response) {
                    backoff(after: attempt)
                    attempt += 1
                    continue
                }
                return response
            } catch let error as HTTPBridge.BridgeMisuse {
                throw error
            } catch {
                if attempt < configuration.maxAttempts, Self.isTransient(error) {
                    backoff(after: attempt)
                    attempt += 1
                    continue
                }
                throw S3Error(
                    status: nil, code: nil, operation: "\(request.method) \(describe(request.key))",
                    message: scrub(Self.describeTransportError(error, endpoint: configuration.endpointDescription)),
                    attempts: attempt)
            }
        }
    }

    static func isTransient(_ response: S3Response) -> Bool {
        switch response.status {
        case 500, 502, 503, 504, 429, 408: return true
        case 400, 409:
            // S3's transient 4xx: an idle upload socket, and a conditional write racing another.
            let code = XMLElement.parse(response.body)?["Code"]
            return code == "RequestTimeout" || code == "ConditionalRequestConflict"
        default: return false
        }
    }

    static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return [
                .remoteConnectionClosed, .connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded,
                .getConnectionFromPoolTimeout, .tlsHandshakeTimeout,
            ].contains(error)
        }
        // A response cut off mid-way (the connection closed before Content-Length bytes).
        if let error = error as? HTTPParserError { return error == .invalidEOFState }
        // Connection refused or reset, DNS hiccups: NIO's channel and socket errors.
        return error is IOError || error is ChannelError || error is NIOConnectionError
    }

    private func backoff(after attempt: Int) {
        let base = configuration.initialBackoff * (1 << min(attempt - 1, 20))
        let capped = min(base, configuration.maximumBackoff)
        let seconds = Double(capped.components.seconds) + Double(capped.components.attoseconds) / 1e18
        Thread.sleep(forTimeInterval: seconds * Double.random(in: 0.5...1.0))
    }

    static func describeTransportError(_ error: any Error, endpoint: String) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connecting to \(endpoint) timed out"
            case .deadlineExceeded, .readTimeout: return "\(endpoint) did not answer in time"
            case .remoteConnectionClosed: return "\(endpoint) closed the connection"
            default: return "\(endpoint): \(error)"
            }
        }
        if error is IOError || error is NIOConnectionError { return "cannot reach \(endpoint): \(error)" }
        return "\(endpoint): \(error)"
    }

    /// Replaces any credential in `text` (S3 echoes the key id in some errors).
    func scrub(_ text: String) -> String {
        var text = text
        for secret in configuration.credentials.secrets where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return text
    }

    /// The ``S3Error`` for a non-2xx reply.
    func error(for response: S3Response, _ request: S3Request) -> S3Error {
        let xml = XMLElement.parse(response.body)
        var message = xml?["Message"] ?? ""
        if message.isEmpty, response.status == 403 { message = "access denied" }
        return S3Error(
            status: response.status, code: xml?["Code"], operation: "\(request.method) \(describe(request.key))",
            message: scrub(message), attempts: response.attempts)
    }

    // MARK: Streaming reads

    /// Starts a GET whose body is read as it arrives. Retries (like ``send(_:)``) until the
    /// response head is a success or a final failure; returns nil on 404.
    func openObject(_ key: String, headers: [(name: String, value: String)] = []) throws -> (StreamingResponse, HTTPResponseHead)? {
        let request = S3Request(.GET, key: key, headers: headers)
        var attempt = 1
        while true {
            let stream: StreamingResponse
            let head: HTTPResponseHead
            do {
                stream = StreamingResponse.start(try httpRequest(request), deadline: nil)
                head = try stream.waitForHead()
            } catch let error as HTTPBridge.BridgeMisuse {
                throw error
            } catch {
                if attempt < configuration.maxAttempts, Self.isTransient(error) {
                    backoff(after: attempt)
                    attempt += 1
                    continue
                }
                throw S3Error(
                    status: nil, code: nil, operation: "GET \(describe(key))",
                    message: scrub(Self.describeTransportError(error, endpoint: configuration.endpointDescription)),
                    attempts: attempt)
            }
            let status = Int(head.status.code)
            if (200..<300).contains(status) { return (stream, head) }
            let body = (try? stream.readAll()) ?? []
            let response = S3Response(status: status, headers: head.headers, body: body, attempts: attempt)
            if attempt < configuration.maxAttempts, Self.isTransient(response) {
                backoff(after: attempt)
                attempt += 1
                continue
            }
            if status == 404 { return nil }
            throw error(for: response, request)
        }
    }
}

/// Checksums sent with every write so that the server rejects bytes that arrive damaged, and
/// checked against what the server says it stored.
struct WriteChecksums {
    /// base64 MD5 (`Content-MD5`: every S3 implementation checks it).
    var md5Base64: String
    /// hex MD5: what a plain (not KMS-encrypted, single-part) object's ETag is.
    var md5Hex: String
    /// base64 SHA-256 (`x-amz-checksum-sha256`: AWS and MinIO check it and echo it back).
    var sha256Base64: String

    init(_ bytes: [UInt8]) {
        let md5 = Insecure.MD5.hash(data: bytes)
        md5Base64 = Data(md5).base64EncodedString()
        md5Hex = SigV4Signer.hex(md5)
        sha256Base64 = Data(SHA256.hash(data: bytes)).base64EncodedString()
    }

    var headers: [(name: String, value: String)] {
        [("content-md5", md5Base64), ("x-amz-checksum-sha256", sha256Base64)]
    }

    /// Whether the reply confirms the stored bytes are the ones sent: the echoed SHA-256 when
    /// the server gives one, else an ETag that is the MD5 (servers that give neither, such as
    /// SSE-KMS buckets without checksum support, cannot be confirmed and are refused).
    func confirmed(by headers: HTTPHeaders) -> Bool {
        if let echoed = headers.first(name: "x-amz-checksum-sha256") { return echoed == sha256Base64 }
        guard let etag = headers.first(name: "etag") else { return false }
        return unquoted(etag) == md5Hex
    }
}

/// An ETag without its quotes.
func unquoted(_ etag: String) -> String {
    var text = Substring(etag)
    if text.hasPrefix("W/") { text = text.dropFirst(2) }
    if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
    return String(text)
}
