import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import Testing
@testable import ArtifactStore
@testable import S3Store

/// What only the S3 backend has: conditional writes racing, the lease, multipart uploads,
/// retries, pagination, and what it says when the credentials are wrong. Against the endpoint
/// in `LOUPE_TEST_S3_ENDPOINT` (moto_server under scripts/test), or a fake server in the test.
@Suite struct S3BackendTests {
    // MARK: Conditional writes

    @Test func twoUploadsOfTheSameDigestBothSucceedAndStoreOneBlob() throws {
        guard let harness = try Harness.make(.s3) else { return }
        let stores = [try harness.open(), try harness.open()]
        let bytes = Fixtures.bytes(300_000, seed: 77)
        // Two writers race: each stages the whole blob, then both commit (put-if-absent).
        let uploads = UncheckedBox(try stores.map { store -> (any BlobUpload, BlobDigest) in
            let upload = try store.backend.stageBlob()
            let writer = try BlobWriter(upload: upload, level: 3, expectedSize: bytes.count)
            try writer.write(bytes)
            return (upload, try writer.finish())
        })
        let created = ConcurrentResults<Bool>()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            // Each upload is used by one thread only.
            created.append(Result { try uploads.value[i].0.commit(as: uploads.value[i].1) })
        }
        let outcomes = try created.values.map { try $0.get() }
        #expect(outcomes.filter { $0 }.count == 1, "exactly one commit creates the blob: \(outcomes)")
        #expect(try stores[0].backend.listBlobs() == [BlobDigest(of: bytes)])
        #expect(try stores[1].readBlob(BlobDigest(of: bytes)) == bytes)
        // A third put of the same bytes is a no-op that refreshes the timestamp.
        #expect(try stores[1].putBlob(bytes) == BlobDigest(of: bytes))
        #expect(try stores[1].verify().ok)
    }

    // MARK: The shared inbox

    @Test func theInboxListsReadsAndMovesFilesDroppedIntoTheBucket() throws {
        guard let harness = try Harness.make(.s3) else { return }
        _ = try harness.open()
        let backend = try harness.s3Backend()
        #expect(try backend.inboxFiles().isEmpty)
        try harness.rawWrite("inbox/november sales.csv", Array("carat,price\n1,2\n".utf8))
        try harness.rawWrite("inbox/broken.csv", Array("x".utf8))
        try harness.rawWrite("inbox/processed/old.csv", Array("y".utf8))
        // Only the files directly in inbox/, by name.
        #expect(try backend.inboxFiles().map(\.name) == ["broken.csv", "november sales.csv"])
        #expect(try backend.inboxFiles().map(\.size) == [1, 16])
        #expect(try backend.readInboxFile("november sales.csv") == Array("carat,price\n1,2\n".utf8))
        try backend.moveInboxFile("november sales.csv", to: "processed", as: "20261207t120000-november sales.csv", note: nil)
        try backend.moveInboxFile("broken.csv", to: "failed", as: "20261207t120000-broken.csv", note: "no price column\n")
        #expect(try backend.inboxFiles().isEmpty)
        let objects = try harness.rawObjects()
        #expect(objects["inbox/processed/20261207t120000-november sales.csv"] == 16)
        #expect(try harness.rawRead("inbox/failed/20261207t120000-broken.csv.error.txt") == Array("no price column\n".utf8))
        #expect(objects["inbox/failed/20261207t120000-broken.csv"] == 1)
        // A file another server took first is an error naming it, not an empty read.
        #expect { try backend.readInboxFile("broken.csv") } throws: { "\($0)".contains("inbox/broken.csv") }
        #expect(backend.inboxLocation.hasPrefix("s3://") && backend.inboxLocation.hasSuffix("/inbox/"))
    }

    @Test func aliasWriteWithAStaleETagLosesAndKeepsTheOtherUpdate() throws {
        guard let harness = try Harness.make(.s3) else { return }
        let store = try harness.open()
        try Fixtures.seed(store)
        let backend = store.backend
        let other = Array("{\"history\":[],\"production\":1}".utf8)
        let error = try #require(throws: StoreError.self) {
            try backend.withExclusiveLock {
                let before = try #require(try backend.readDocument("aliases/price.json"))
                // Another writer (one whose lease had taken over) changes the alias meanwhile.
                try harness.rawWrite("aliases/price.json", other)
                try backend.replaceDocument("aliases/price.json", with: before + [0x20])
            }
        }
        #expect(error.code == .conflict, "\(error)")
        #expect(error.message.contains("aliases/price.json"))
        #expect(try harness.rawRead("aliases/price.json") == other, "the other writer's update survives")
        // A document first read as absent must still be absent when written.
        let again = try #require(throws: StoreError.self) {
            try backend.withExclusiveLock {
                #expect(try backend.readDocument("aliases/new.json") == nil)
                try harness.rawWrite("aliases/new.json", other)
                try backend.replaceDocument("aliases/new.json", with: Array("{}".utf8))
            }
        }
        #expect(again.code == .conflict)
    }

    @Test func concurrentPromotionsFromTwoStoresLoseNoUpdate() throws {
        guard let harness = try Harness.make(.s3) else { return }
        let first = try harness.open()
        try Fixtures.seed(first)
        let stores = [first, try harness.open(), try harness.open()]
        let results = ConcurrentResults<Void>()
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            for round in 0..<3 {
                results.append(Result {
                    _ = try stores[i].promote(name: "price", version: 1 + (i + round) % 2, to: .staging, reason: "w\(i) r\(round)")
                })
            }
        }
        for result in results.values { try result.get() }
        let record = try first.aliases(name: "price")
        #expect(record.history.count == 2 + 9, "every promotion is in the history: \(record.history.map(\.reason))")
        #expect(Set(record.history.compactMap(\.reason)).count == 11)
    }

    // MARK: The lease

    @Test func aStaleLeaseIsTakenOverAfterItExpires() throws {
        guard let harness = try Harness.make(.s3, tweak: { $0.leaseDuration = .seconds(2) }) else { return }
        let store = try harness.open()
        // A holder that died: its lease is neither released nor renewed.
        let dead = S3Lease.Body(holder: "dead-host pid 1", acquired: "2026-01-01T00:00:00Z", ttlSeconds: 1, released: false)
        try harness.rawWrite("lock", Array(try JSONEncoder().encode(dead)))
        let backend = try #require(store.backend as? S3Backend)
        let holderSeen = try backend.withExclusiveLock { () throws -> String in
            let lease = try JSONDecoder().decode(S3Lease.Body.self, from: Data(try #require(try harness.rawRead("lock"))))
            #expect(!lease.released)
            return lease.holder
        }
        #expect(holderSeen == backend.holder)
        let after = try JSONDecoder().decode(S3Lease.Body.self, from: Data(try #require(try harness.rawRead("lock"))))
        #expect(after.released && after.holder == backend.holder)
        // Released: the next holder takes it at once.
        #expect(try backend.withExclusiveLock { 42 } == 42)
    }

    @Test func aMissingBucketIsAClearErrorNotAnEndlessWait() throws {
        guard let harness = try Harness.make(.s3) else { return }
        var configuration = try #require(harness.s3)
        configuration.bucket = "no-such-bucket-" + UUID().uuidString.prefix(8).lowercased()
        // Opening creates the store marker under the lock: the lock's put finds no bucket.
        let error = try #require(throws: StoreError.self) { _ = try ArtifactStore(backend: try S3Backend(configuration: configuration)) }
        #expect(error.code == .notFound && error.message.contains(configuration.bucket), "\(error)")
    }

    @Test func aLiveLeaseExcludesOtherHolders() throws {
        guard let harness = try Harness.make(.s3, tweak: { $0.leaseDuration = .seconds(3) }) else { return }
        let backends = [try harness.s3Backend(), try harness.s3Backend()]
        let inside = NIOLockedValueBox((now: 0, most: 0, entries: 0))
        let results = ConcurrentResults<Void>()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            for _ in 0..<3 {
                results.append(Result {
                    try backends[i].withExclusiveLock {
                        inside.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now); $0.entries += 1 }
                        Thread.sleep(forTimeInterval: 0.05)
                        inside.withLockedValue { $0.now -= 1 }
                    }
                })
            }
        }
        for result in results.values { try result.get() }
        let seen = inside.withLockedValue { $0 }
        #expect(seen.entries == 6 && seen.most == 1, "never two holders at once: \(seen)")
    }

    @Test func aHolderThatLostItsLeaseCannotWrite() throws {
        guard let harness = try Harness.make(.s3, tweak: { $0.leaseDuration = .seconds(1) }) else { return }
        let backend = try harness.s3Backend()
        _ = try ArtifactStore(backend: backend)
        let error = try #require(throws: StoreError.self) {
            try backend.withExclusiveLock {
                // Another process takes the lease over (as if this one had stalled past expiry).
                let thief = S3Lease.Body(holder: "thief", acquired: "2026-01-01T00:00:00Z", ttlSeconds: 60, released: false)
                try harness.rawWrite("lock", Array(try JSONEncoder().encode(thief)))
                // The next renewal notices (bounded wait; no timing is asserted).
                for _ in 0..<600 where !backend.leaseLost { Thread.sleep(forTimeInterval: 0.05) }
                try backend.replaceDocument("records/x/y.json", with: Array("{}".utf8))
            }
        }
        #expect(error.code == .conflict, "\(error)")
        #expect(try harness.rawRead("records/x/y.json") == nil)
        let lease = try JSONDecoder().decode(S3Lease.Body.self, from: Data(try #require(try harness.rawRead("lock"))))
        #expect(lease.holder == "thief" && !lease.released, "a lost lease is not released by its former holder")
    }

    // MARK: Multipart, listing

    @Test func largeBlobsGoUpInPartsAndLeaveNoStagingBehind() throws {
        // 5 MiB parts (S3's minimum), 11 MiB of incompressible bytes: three parts.
        guard let harness = try Harness.make(.s3, tweak: { $0.partSize = 5 << 20 }) else { return }
        let store = try harness.open(.init(chunkSize: 1 << 20))
        let bytes = Fixtures.bytes(11 << 20, seed: 5, compressible: false)
        let digest = try store.putBlob(bytes)
        #expect(try store.readBlob(digest) == bytes)
        #expect(try store.backend.blobInfo(digest).map(\.storedSize) ?? 0 > 10 << 20)
        #expect(try harness.rawObjects().keys.filter { $0.hasPrefix("tmp/") }.isEmpty, "the staging object is removed")
        let backend = try #require(store.backend as? S3Backend)
        var aged = backend.configuration
        aged.abandonedAfter = .zero
        #expect(try S3Backend(configuration: aged, readOnly: true).abandonedUploads().isEmpty, "no multipart upload left open")
        // Again: the blob exists, so the second upload is discarded.
        #expect(try store.putBlob(bytes) == digest)
        #expect(try harness.rawObjects().keys.filter { $0.hasPrefix("tmp/") }.isEmpty)
        #expect(try store.verify().ok)
    }

    @Test func anAbortedLargeUploadLeavesNothing() throws {
        guard let harness = try Harness.make(.s3, tweak: { $0.partSize = 5 << 20 }) else { return }
        let store = try harness.open()
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.putBlob { writer in
                try writer.write(Fixtures.bytes(6 << 20, seed: 6, compressible: false))
                throw Boom()
            }
        }
        let backend = try #require(store.backend as? S3Backend)
        var aged = backend.configuration
        aged.abandonedAfter = .zero
        #expect(try S3Backend(configuration: aged, readOnly: true).abandonedUploads().isEmpty)
        #expect(try store.backend.listBlobs().isEmpty)
    }

    @Test func listingsFollowContinuationTokens() throws {
        guard let harness = try Harness.make(.s3, tweak: { $0.listPageSize = 2 }) else { return }
        let store = try harness.open()
        let ids = (0..<7).map { "r\($0)" }
        for id in ids { try store.putRecord(kind: "paged", id: id, json: Array("{}".utf8)) }
        #expect(try store.recordIDs(kind: "paged") == ids)
        let digests = try (0..<5).map { try store.putBlob(Fixtures.bytes(100, seed: UInt64($0))) }
        #expect(Set(try store.backend.listBlobs()) == Set(digests))
        for name in ["a", "b", "c"] {
            _ = try store.putDataset(name: name, cleanCSV: [1], counts: RowCounts(rowsIn: 1, clean: 1, quarantined: 0))
        }
        #expect(try store.datasetNames() == ["a", "b", "c"])
        #expect(Set(try store.backend.listDocuments(prefix: "")).isSuperset(of: ["store.json", "blobs", "datasets", "records"]))
    }

    // MARK: Retries and errors (fake server)

    static func configuration(_ endpoint: String, attempts: Int = 4) throws -> S3Configuration {
        try S3Configuration(
            bucket: "fake-bucket", prefix: "p", endpoint: endpoint,
            credentials: S3Credentials(accessKeyID: "AKIAFAKEKEYID", secretAccessKey: "s3cr3t-NEVER-SHOWN", sessionToken: "t0ken-NEVER-SHOWN"),
            maxAttempts: attempts, initialBackoff: .milliseconds(1), maximumBackoff: .milliseconds(5), requestTimeout: .seconds(20))
    }

    @Test func transientFailuresAreRetriedAndPreconditionFailuresAreNot() throws {
        let failures = NIOLockedValueBox(0)
        let server = try FakeS3Server { request, _ in
            if request.method == .PUT && request.uri.hasSuffix("/retried.json") {
                let n = failures.withLockedValue { n -> Int in
                    n += 1
                    return n
                }
                if n == 1 { return .error(.internalServerError, code: "InternalError", message: "try again") }
                if n == 2 { return .error(.serviceUnavailable, code: "SlowDown", message: "slow down") }
            }
            if request.uri.hasSuffix("/conflict.json") {
                return .error(.preconditionFailed, code: "PreconditionFailed", message: "At least one of the pre-conditions failed")
            }
            // Success, with the ETag a plain object has: its MD5.
            return FakeS3Server.Reply(status: .ok, headers: [("etag", "\"\(WriteChecksums(request.body).md5Hex)\"")])
        }
        defer { server.stop() }
        let backend = try S3Backend(configuration: try Self.configuration(server.endpoint), readOnly: false)
        try backend.replaceDocument("records/k/retried.json", with: Array("{}".utf8))
        let puts = server.requests.filter { $0.uri.hasSuffix("/retried.json") }
        #expect(puts.count == 3, "two failures, then success")
        #expect(puts.allSatisfy { $0.headers.first(name: "content-md5") == WriteChecksums(Array("{}".utf8)).md5Base64 })
        #expect(puts.allSatisfy { $0.headers.first(name: "authorization")?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIAFAKEKEYID/") == true })
        // A 412 is an answer, not a failure to retry.
        let error = try #require(throws: StoreError.self) {
            try backend.withExclusiveLock { try backend.replaceDocument("records/k/conflict.json", with: Array("{}".utf8)) }
        }
        #expect(error.code == .conflict)
        #expect(server.requests.filter { $0.uri.hasSuffix("/conflict.json") }.count == 1)
    }

    @Test func aReadCutOffMidwayResumesWhereItStopped() throws {
        let object = Fixtures.bytes(3 << 20, seed: 21, compressible: false)
        let etag = "\"\(WriteChecksums(object).md5Hex)\""
        let server = try FakeS3Server { request, _ in
            guard let range = request.headers.first(name: "range") else {
                // The first GET: the whole object announced, a third of it sent.
                return .init(status: .ok, headers: [("etag", etag)], body: object, cutAfter: object.count / 3)
            }
            guard request.headers.first(name: "if-match") == etag, range.hasPrefix("bytes="), range.hasSuffix("-"),
                let start = Int(range.dropFirst(6).dropLast())
            else { return .error(.badRequest, code: "Unexpected", message: "range \(range)") }
            return .init(status: .partialContent, headers: [("etag", etag)], body: Array(object[start...]))
        }
        defer { server.stop() }
        let backend = try S3Backend(configuration: try Self.configuration(server.endpoint), readOnly: true)
        let source = try backend.openBlob(BlobDigest(of: [1]))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 100_000)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            received += buffer[0..<n]
        }
        #expect(received == object)
        let ranges = server.requests.compactMap { $0.headers.first(name: "range") }
        #expect(ranges.count == 1 && ranges[0] != "bytes=0-", "resumed once, from where it stopped: \(ranges)")
    }

    @Test func anUnreachableEndpointIsAClearErrorAfterRetries() throws {
        let server = try FakeS3Server { _, _ in .init(status: .ok) }
        let endpoint = server.endpoint
        server.stop()  // nothing listens there now
        let backend = try S3Backend(configuration: try Self.configuration(endpoint, attempts: 3), readOnly: true)
        let error = try #require(throws: StoreError.self) { _ = try backend.readDocument("store.json") }
        #expect(error.code == .io)
        #expect(error.message.contains("unreachable") && error.message.contains(endpoint), "\(error)")
        #expect(error.message.contains("3 attempts"), "\(error)")
    }

    @Test func badCredentialsNameTheBucketAndNeverTheSecret() throws {
        let configuration = try Self.configuration("http://127.0.0.1:1")
        let server = try FakeS3Server { request, _ in
            // Real servers echo the key id (and, for SignatureDoesNotMatch, what was signed).
            .error(
                .forbidden, code: "InvalidAccessKeyId",
                message: "The AWS Access Key Id you provided (AKIAFAKEKEYID) does not exist in our records.")
        }
        defer { server.stop() }
        var pointed = configuration
        pointed.port = server.port
        let error = try #require(throws: StoreError.self) { _ = try ArtifactStore(backend: try S3Backend(configuration: pointed)) }
        let text = "\(error)"
        #expect(text.contains("fake-bucket"), "\(text)")
        #expect(text.contains("InvalidAccessKeyId") && text.contains("AWS_SECRET_ACCESS_KEY"), "\(text)")
        for secret in ["s3cr3t-NEVER-SHOWN", "t0ken-NEVER-SHOWN", "AKIAFAKEKEYID"] {
            #expect(!text.contains(secret), "\(secret) leaked: \(text)")
            #expect(!"\(pointed)".contains(secret) && !"\(pointed.credentials)".contains(secret))
        }
        let attempts = Dictionary(grouping: server.requests, by: { "\($0.method) \($0.uri)" }).mapValues(\.count)
        #expect(attempts.values.allSatisfy { $0 == 1 }, "403 is not retried: \(attempts)")
    }

    // MARK: Configuration

    @Test func configurationComesFromTheEnvironmentLikeTheAWSCLI() throws {
        let credentials = ["AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "secret"]
        var c = try S3Configuration.fromEnvironment(url: "s3://my-bucket/team/loupe", environment: credentials)
        #expect(c.bucket == "my-bucket" && c.prefix == "team/loupe/" && c.region == "us-east-1")
        #expect(c.addressing == .virtualHosted && c.hostHeader == "my-bucket.s3.us-east-1.amazonaws.com")
        #expect(c.path(forKey: "team/loupe/store.json") == "/team/loupe/store.json")
        c = try S3Configuration.fromEnvironment(url: "s3://my-bucket", environment: credentials.merging([
            "AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
            "AWS_DEFAULT_REGION": "eu-west-1", "AWS_SESSION_TOKEN": "tok",
        ]) { $1 })
        #expect(c.prefix == "" && c.region == "eu-west-1" && c.credentials.sessionToken == "tok")
        #expect(c.addressing == .path && c.hostHeader == "127.0.0.1:9000" && c.path(forKey: "store.json") == "/my-bucket/store.json")
        c = try S3Configuration.fromEnvironment(
            url: "s3://my-bucket/", environment: credentials.merging(["AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "x"]) { $1 })
        #expect(c.region == "ap-south-1")
        let missing = try #require(throws: StoreError.self) { try S3Configuration.fromEnvironment(url: "s3://my-bucket", environment: [:]) }
        #expect(missing.message.contains("AWS_ACCESS_KEY_ID") && missing.message.contains("my-bucket"))
        #expect(throws: StoreError.self) { try S3Configuration.fromEnvironment(url: "s3://", environment: credentials) }
        #expect(throws: StoreError.self) { try S3Configuration.fromEnvironment(url: "s3://Bad_Bucket", environment: credentials) }
        #expect(StoreLocation.isS3("s3://b/p") && !StoreLocation.isS3("./loupe-store"))
    }
}

/// A value handed to other threads by a test that knows each part is used by one at a time.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Results gathered from several threads.
final class ConcurrentResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<T, any Error>] = []
    func append(_ result: Result<T, any Error>) {
        lock.lock()
        results.append(result)
        lock.unlock()
    }
    var values: [Result<T, any Error>] {
        lock.lock()
        defer { lock.unlock() }
        return results
    }
}
