import ArtifactStore
import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1

/// The artifact store on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, R2).
///
///     s3://BUCKET/PREFIX
///       store.json                    format marker
///       lock                          the lease behind withExclusiveLock (S3Lease)
///       blobs/sha256/ab/<hex>         zstd frames, named by the SHA-256 of their raw bytes
///       datasets/<name>/<n>.json      dataset manifests
///       models/<name>/<n>.json        model manifests
///       aliases/<name>.json           alias records
///       records/<kind>/<id>.json      records
///       tmp/<session>/<n>.blob        multipart uploads in progress (large blobs only)
///
/// How it provides ``ArtifactBackend``'s four guarantees with the documented S3 API only:
///
/// 1. **Put-if-absent for blobs**: a blob up to the part size goes up in one `PutObject` with
///    `If-None-Match: *` straight to its key; a larger one as a multipart upload to a staging
///    key under `tmp/` (its digest is known only at the end), then `CopyObject` to its key with
///    `If-None-Match: *`, then the staging object is deleted. A 412 means the blob exists: its
///    `Last-Modified` is refreshed instead (a `CopyObject` onto itself with new metadata), as the
///    grace period of `gc` needs. Blobs are content-addressed, so even a server that ignored the
///    condition would only replace a blob by the same content.
/// 2. **Atomic replace for documents**: one `PutObject` (S3 objects are replaced whole). Under
///    the store lock, a document is also a compare-and-swap: written with `If-Match` on the ETag
///    it had when read under the same lock (`If-None-Match: *` when it was absent, or for a new
///    manifest), so that a lock holder whose lease was taken over cannot overwrite the work of
///    the next holder (a `conflict` error instead). Outside the lock (records), a plain put.
/// 3. **Mutual exclusion**: ``S3Lease``.
/// 4. **Listing one prefix**: `ListObjectsV2` with `delimiter=/`, following continuation tokens.
///
/// Every write is verified: `Content-MD5` and `x-amz-checksum-sha256` go with the bytes (the
/// server rejects damaged ones), and the reply must confirm them (the echoed SHA-256, or an
/// ETag equal to the MD5); when it cannot, the object is read back and compared. Transient
/// failures (5xx, 429, timeouts, dropped connections) are retried with exponential backoff;
/// 412 never is. See ``HTTPBridge`` for how the synchronous calls wait for the network.
public final class S3Backend: ArtifactBackend {
    public let configuration: S3Configuration
    let client: S3Client
    let readOnly: Bool
    /// This instance's id: staging keys live under `tmp/<session>/`; the lease names it.
    let session: String
    let holder: String

    /// Serialises this instance's lock holders (threads of one process queue here, not on S3).
    private let localLock = NSLock()
    private let lockState = NIOLockedValueBox(LockState())

    private struct LockState {
        /// The thread running a `withExclusiveLock` body.
        var holder: ObjectIdentifier?
        var lease: S3Lease?
        /// ETags of documents read under the lock (nil: read as absent).
        var etags: [String: String?] = [:]
    }

    /// Opens the store's bucket and prefix. Unless `readOnly`, sweeps staging uploads abandoned
    /// longer than ``S3Configuration/abandonedAfter`` ago (best effort).
    public init(configuration: S3Configuration, readOnly: Bool = false) throws {
        self.configuration = configuration
        self.client = S3Client(configuration: configuration)
        self.readOnly = readOnly
        self.session = Self.randomHex(8)
        let host = ProcessInfo.processInfo.hostName
        self.holder = "\(host) pid \(ProcessInfo.processInfo.processIdentifier) session \(session)"
        if !readOnly { _ = try? sweepAbandoned(remove: true) }
    }

    public var description: String { "S3 store \(configuration.url) at \(configuration.endpointDescription)" }

    // MARK: Keys

    func key(_ relative: String) -> String { configuration.prefix + relative }

    func blobKey(_ digest: BlobDigest) -> String { key("blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)") }

    public func location(of digest: BlobDigest) -> String { "s3://\(configuration.bucket)/\(blobKey(digest))" }

    // MARK: Errors

    func fail(_ error: S3Error, _ what: String) -> StoreError { storeError(error, client: client, what: what) }

    /// Sends, turning a transport failure into a ``StoreError``.
    func send(_ request: S3Request, _ what: @autoclosure () -> String) throws -> S3Response {
        do {
            return try client.send(request)
        } catch let error as S3Error {
            throw fail(error, what())
        } catch {
            throw StoreError(.io, "\(what()): \(error)")
        }
    }

    /// Sends and requires success (or one of `accepting`).
    func expect(_ request: S3Request, _ what: @autoclosure () -> String, accepting: Set<Int> = []) throws -> S3Response {
        let response = try send(request, what())
        // A missing bucket is never "no such object".
        if response.status == 404, XMLElement.parse(response.body)?["Code"] == "NoSuchBucket" {
            throw fail(client.error(for: response, request), what())
        }
        if accepting.contains(response.status) { return response }
        do {
            guard response.ok else { throw client.error(for: response, request) }
            if request.method == .POST || request.headers.contains(where: { $0.name == "x-amz-copy-source" }),
                let xml = XMLElement.parse(response.body), xml.name == "Error"
            {
                throw S3Error(
                    status: 500, code: xml["Code"], operation: "\(request.method) \(client.describe(request.key))",
                    message: client.scrub(xml["Message"] ?? ""), attempts: response.attempts)
            }
        } catch let error as S3Error {
            throw fail(error, what())
        }
        return response
    }

    func requireWritable() throws {
        if readOnly { throw StoreError(.readOnly, "\(self) is open read-only") }
    }

    // MARK: Blobs

    public func stageBlob() throws -> any BlobUpload {
        try requireWritable()
        return S3BlobUpload(backend: self)
    }

    public func openBlob(_ digest: BlobDigest) throws -> any BlobSource {
        let key = blobKey(digest)
        let opened: (StreamingResponse, HTTPResponseHead)?
        do {
            opened = try client.openObject(key)
        } catch let error as S3Error {
            throw fail(error, "reading blob \(digest)")
        }
        guard let (stream, head) = opened else {
            throw StoreError(.notFound, "blob \(digest) not found at \(location(of: digest))")
        }
        return S3BlobSource(backend: self, digest: digest, key: key, stream: stream, etag: head.headers.first(name: "etag"))
    }

    public func blobInfo(_ digest: BlobDigest) throws -> BlobInfo? {
        try objectInfo(blobKey(digest), "examining blob \(digest)").map {
            BlobInfo(storedSize: $0.size, lastTouched: $0.modified)
        }
    }

    /// HEAD: size and Last-Modified, or nil when absent.
    func objectInfo(_ key: String, _ what: @autoclosure () -> String) throws -> (size: Int64, modified: Date)? {
        let response = try expect(S3Request(.HEAD, key: key), what(), accepting: [404])
        if response.status == 404 { return nil }
        let size = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
        let modified = response.headers.first(name: "last-modified").flatMap(S3Dates.parseHTTP) ?? Date()
        return (size, modified)
    }

    public func confirmBlob(_ digest: BlobDigest) throws -> Bool {
        try requireWritable()
        return try touch(blobKey(digest), "confirming blob \(digest)")
    }

    /// Refreshes an object's Last-Modified by copying it onto itself with new metadata (S3 has
    /// no other way to touch an object); false when it does not exist.
    func touch(_ key: String, _ what: @autoclosure () -> String) throws -> Bool {
        let request = S3Request(
            .PUT, key: key,
            headers: [
                ("x-amz-copy-source", "/\(configuration.bucket)/\(SigV4Signer.uriEncode(key, keepSlash: true))"),
                ("x-amz-metadata-directive", "REPLACE"),
                ("x-amz-meta-loupe-touched", S3Dates.formatISO(Date())),
                ("content-type", "application/zstd"),
            ])
        let response = try expect(request, what(), accepting: [404])
        return response.status != 404
    }

    public func listBlobs() throws -> [BlobDigest] {
        let base = key("blobs/sha256/")
        return try listObjects(prefix: base, delimiter: false, "listing blobs").objects.compactMap { object in
            let relative = object.key.dropFirst(base.count)
            let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].utf8.count == 2, let digest = BlobDigest(String(parts[1])),
                digest.hex == parts[1], digest.hex.hasPrefix(parts[0])
            else { return nil }
            return digest
        }
    }

    public func deleteBlob(_ digest: BlobDigest) throws {
        try requireWritable()
        _ = try expect(S3Request(.DELETE, key: blobKey(digest)), "deleting blob \(digest)", accepting: [404])
    }

    // MARK: Documents

    /// True when the calling thread runs a `withExclusiveLock` body of this instance.
    private var callerHoldsLock: Bool {
        let me = ObjectIdentifier(Thread.current)
        return lockState.withLockedValue { $0.holder == me }
    }

    public func readDocument(_ key: String) throws -> [UInt8]? {
        let response = try expect(S3Request(.GET, key: self.key(key)), "reading \(key)", accepting: [404])
        if callerHoldsLock {
            let etag = response.status == 404 ? nil : response.etag
            lockState.withLockedValue { $0.etags[key] = .some(etag) }
        }
        return response.status == 404 ? nil : response.body
    }

    public func replaceDocument(_ key: String, with bytes: [UInt8]) throws {
        try requireWritable()
        let checksums = WriteChecksums(bytes)
        var headers = checksums.headers + [("content-type", "application/json")]
        let locked = callerHoldsLock
        if locked {
            let (lease, recorded) = lockState.withLockedValue { ($0.lease, $0.etags[key]) }
            if lease?.isLost == true {
                throw StoreError(
                    .conflict,
                    "writing \(key): the store lock of \(configuration.url) expired and was taken over by another "
                        + "writer while this one held it; nothing was written")
            }
            if case .some(.some(let etag)) = recorded {
                headers.append(("if-match", etag))
            } else {
                headers.append(("if-none-match", "*"))  // read as absent, or a new manifest
            }
        }
        let request = S3Request(.PUT, key: self.key(key), headers: headers, body: bytes)
        let response = try expect(request, "writing \(key)", accepting: [404, 412])
        var etag = response.etag
        if response.status == 412 || response.status == 404 {
            // After a retry, the condition may have failed on our own earlier attempt's write.
            let current = response.attempts > 1 ? try send(S3Request(.GET, key: self.key(key)), "reading \(key)") : nil
            guard let current, current.ok, current.body == bytes else {
                throw StoreError(
                    .conflict,
                    "writing \(key): it was changed by another writer since this one read it (HTTP \(response.status)); "
                        + "nothing was written")
            }
            etag = current.etag
        } else if !checksums.confirmed(by: response.headers) {
            try verifyByReading(self.key(key), bytes, "writing \(key)")
        }
        if locked { lockState.withLockedValue { $0.etags[key] = .some(etag) } }
    }

    /// The last resort of write verification: read the object back and compare.
    func verifyByReading(_ key: String, _ bytes: [UInt8], _ what: String) throws {
        let response = try expect(S3Request(.GET, key: key), what)
        guard response.body == bytes else {
            throw StoreError(.io, "\(what): \(client.describe(key)) does not hold the bytes just written")
        }
    }

    public func listDocuments(prefix: String) throws -> [String] {
        let base = key(prefix)
        let listing = try listObjects(prefix: base, delimiter: true, "listing \(prefix)")
        let files = listing.objects.map { String($0.key.dropFirst(base.count)) }
        let directories = listing.prefixes.map { String($0.dropFirst(base.count).dropLast()) }
        return (files + directories).filter { !$0.isEmpty && !$0.hasPrefix(".") }
    }

    public func documentSize(_ key: String) throws -> Int64? {
        try objectInfo(self.key(key), "examining \(key)")?.size
    }

    // MARK: Listing

    struct Listing {
        struct Object { var key: String; var size: Int64; var modified: Date }
        var objects: [Object] = []
        var prefixes: [String] = []
    }

    /// ListObjectsV2 under `prefix`, every page.
    func listObjects(prefix: String, delimiter: Bool, _ what: @autoclosure () -> String) throws -> Listing {
        var listing = Listing()
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", "\(configuration.listPageSize)")]
            if delimiter { query.append(("delimiter", "/")) }
            if let token { query.append(("continuation-token", token)) }
            let response = try expect(S3Request(.GET, key: nil, query: query), what())
            guard let xml = XMLElement.parse(response.body), xml.name == "ListBucketResult" else {
                throw StoreError(.io, "\(what()): the listing of \(client.describe(prefix)) is not a ListBucketResult")
            }
            for item in xml.children("Contents") {
                guard let key = item["Key"] else { continue }
                listing.objects.append(.init(
                    key: key, size: item["Size"].flatMap { Int64($0) } ?? 0,
                    modified: item["LastModified"].flatMap(S3Dates.parseISO) ?? .distantPast))
            }
            listing.prefixes += xml.children("CommonPrefixes").compactMap { $0["Prefix"] }
            token = xml["IsTruncated"] == "true" ? xml["NextContinuationToken"] : nil
        } while token != nil
        return listing
    }

    // MARK: Lock and housekeeping

    public func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        try requireWritable()
        localLock.lock()
        defer { localLock.unlock() }
        let lease: S3Lease
        do {
            lease = try S3Lease.acquire(key: key("lock"), holder: holder, client: client)
        } catch let error as S3Error {
            throw fail(error, "taking the store lock")
        }
        let me = ObjectIdentifier(Thread.current)
        lockState.withLockedValue { $0 = LockState(holder: me, lease: lease) }
        defer {
            lockState.withLockedValue { $0 = LockState() }
            lease.release()
        }
        return try body()
    }

    /// True when the running lock body's lease was taken over by another holder.
    var leaseLost: Bool { lockState.withLockedValue { $0.lease?.isLost ?? false } }

    public func abandonedUploads() throws -> [String] {
        try sweepAbandoned(remove: false)
    }

    /// Staging objects and multipart uploads under `tmp/` older than the abandonment age:
    /// listed, and with `remove`, deleted or aborted.
    func sweepAbandoned(remove: Bool) throws -> [String] {
        let base = key("tmp/")
        let cutoff = Date().addingTimeInterval(-Double(configuration.abandonedAfter.components.seconds))
        var found: [String] = []
        for object in try listObjects(prefix: base, delimiter: false, "listing staging uploads").objects
        where object.modified < cutoff {
            found.append(client.describe(object.key))
            if remove { _ = try? send(S3Request(.DELETE, key: object.key), "removing \(object.key)") }
        }
        var marker: (key: String, upload: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", base)]
            if let marker { query += [("key-marker", marker.key), ("upload-id-marker", marker.upload)] }
            let response = try expect(S3Request(.GET, key: nil, query: query), "listing multipart uploads")
            guard let xml = XMLElement.parse(response.body) else { break }
            for upload in xml.children("Upload") {
                guard let key = upload["Key"], let id = upload["UploadId"],
                    let started = upload["Initiated"].flatMap(S3Dates.parseISO), started < cutoff
                else { continue }
                found.append(client.describe(key) + " (multipart upload \(id))")
                if remove {
                    _ = try? send(S3Request(.DELETE, key: key, query: [("uploadId", id)]), "aborting an upload")
                }
            }
            if xml["IsTruncated"] == "true", let key = xml["NextKeyMarker"], let id = xml["NextUploadIdMarker"] {
                marker = (key, id)
            } else {
                marker = nil
            }
        } while marker != nil
        return found
    }

    static func randomHex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return SigV4Signer.hex((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
