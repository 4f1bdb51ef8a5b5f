import Foundation
import NIOHTTP1
import Testing
@testable import ArtifactStore
@testable import S3Store

/// The backends the store's suites run against: the local directory always, S3 when an
/// S3-compatible endpoint is configured (`LOUPE_TEST_S3_ENDPOINT`, which scripts/test sets by
/// starting moto_server; required under CI).
enum BackendKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case local, s3
    var testDescription: String { rawValue }
}

/// The S3 endpoint for tests, nil (with a loud note) when none is set outside CI; under CI a
/// missing endpoint fails the test.
func s3TestEndpoint() throws -> String? {
    if let url = ProcessInfo.processInfo.environment["LOUPE_TEST_S3_ENDPOINT"], !url.isEmpty { return url }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        throw StoreError(.notFound, "CI=true but LOUPE_TEST_S3_ENDPOINT is not set: the S3 store tests cannot be skipped in CI")
    }
    print("⚠️  SKIPPING S3 store tests: LOUPE_TEST_S3_ENDPOINT is not set (scripts/test starts moto_server)")
    return nil
}

/// One store location under test, on either backend, with raw access to the objects behind it
/// (to damage, delete or inspect them as a test needs). S3 locations get a fresh prefix in
/// the test bucket, emptied when the harness is dropped.
final class Harness: @unchecked Sendable {
    let kind: BackendKind
    /// Scratch files (and, for the local backend, the store itself).
    let dir: TemporaryDirectory
    /// The S3 location (nil for the local backend).
    let s3: S3Configuration?

    /// Nil when the backend is S3 and no endpoint is configured (the caller returns: skipped).
    static func make(_ kind: BackendKind, tweak: (inout S3Configuration) -> Void = { _ in }) throws -> Harness? {
        switch kind {
        case .local:
            return Harness(kind: .local, dir: TemporaryDirectory(), s3: nil)
        case .s3:
            guard let endpoint = try s3TestEndpoint() else { return nil }
            let bucket = ProcessInfo.processInfo.environment["LOUPE_TEST_S3_BUCKET"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "loupe-test"
            var configuration = try S3Configuration(
                bucket: bucket, prefix: "t-" + UUID().uuidString.prefix(12).lowercased(), region: "us-east-1", endpoint: endpoint,
                credentials: testCredentials, maxAttempts: 4, initialBackoff: .milliseconds(20),
                maximumBackoff: .milliseconds(200), requestTimeout: .seconds(30), leaseDuration: .seconds(10),
                lockWaitLimit: .seconds(120))
            tweak(&configuration)
            try ensureBucket(configuration)
            return Harness(kind: .s3, dir: TemporaryDirectory(), s3: configuration)
        }
    }

    static let testCredentials = S3Credentials(
        accessKeyID: ProcessInfo.processInfo.environment["AWS_ACCESS_KEY_ID"] ?? "loupe-test-key",
        secretAccessKey: ProcessInfo.processInfo.environment["AWS_SECRET_ACCESS_KEY"] ?? "loupe-test-secret")

    private init(kind: BackendKind, dir: TemporaryDirectory, s3: S3Configuration?) {
        self.kind = kind
        self.dir = dir
        self.s3 = s3
    }

    /// Opens (another instance of) the store.
    func open(_ configuration: ArtifactStore.Configuration = .init()) throws -> ArtifactStore {
        switch kind {
        case .local: return try ArtifactStore.open(at: dir.path, configuration: configuration)
        case .s3: return try ArtifactStore(backend: try S3Backend(configuration: s3!), configuration: configuration)
        }
    }

    /// Opens the existing store for reading only.
    func openReadOnly() throws -> ArtifactStore {
        switch kind {
        case .local: return try ArtifactStore.openReadOnly(at: dir.path)
        case .s3: return try ArtifactStore(backend: try S3Backend(configuration: s3!, readOnly: true), readOnly: true)
        }
    }

    /// A backend instance of its own (S3 only).
    func s3Backend() throws -> S3Backend { try S3Backend(configuration: s3!) }

    // MARK: Raw objects (keys relative to the store: `models/price/1.json`)

    static func blobKey(_ digest: BlobDigest) -> String { "blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)" }

    private var client: S3Client { S3Client(configuration: s3!) }

    func rawRead(_ key: String) throws -> [UInt8]? {
        switch kind {
        case .local: return FileManager.default.contents(atPath: dir.path + "/" + key).map { Array($0) }
        case .s3:
            let response = try client.send(S3Request(.GET, key: s3!.prefix + key))
            return response.status == 404 ? nil : response.body
        }
    }

    func rawWrite(_ key: String, _ bytes: [UInt8]) throws {
        switch kind {
        case .local: try Data(bytes).write(to: URL(fileURLWithPath: dir.path + "/" + key))
        case .s3:
            let response = try client.send(S3Request(.PUT, key: s3!.prefix + key, body: bytes))
            guard response.ok else { throw client.error(for: response, S3Request(.PUT, key: key)) }
        }
    }

    func rawDelete(_ key: String) throws {
        switch kind {
        case .local: try FileManager.default.removeItem(atPath: dir.path + "/" + key)
        case .s3: _ = try client.send(S3Request(.DELETE, key: s3!.prefix + key))
        }
    }

    /// Every stored object (file) and its size, keys relative to the store.
    func rawObjects() throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        switch kind {
        case .local:
            let walker = FileManager.default.enumerator(atPath: dir.path)
            while let relative = walker?.nextObject() as? String {
                let attributes = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + relative)
                guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
                result[relative] = Int64(attributes[.size] as? Int ?? 0)
            }
        case .s3:
            let backend = try S3Backend(configuration: s3!, readOnly: true)
            for object in try backend.listObjects(prefix: s3!.prefix, delimiter: false, "test listing").objects {
                result[String(object.key.dropFirst(s3!.prefix.count))] = object.size
            }
        }
        return result
    }

    /// Where the store says a blob lives (a path or an s3:// URL), as messages name it.
    func location(of digest: BlobDigest) -> String {
        switch kind {
        case .local: return dir.path + "/" + Self.blobKey(digest)
        case .s3: return "s3://\(s3!.bucket)/\(s3!.prefix)\(Self.blobKey(digest))"
        }
    }

    deinit {
        guard kind == .s3, let s3, let objects = try? rawObjects() else { return }
        let client = S3Client(configuration: s3)
        for key in objects.keys { _ = try? client.send(S3Request(.DELETE, key: s3.prefix + key)) }
    }

    /// Creates the test bucket if it does not exist (once per process).
    private static func ensureBucket(_ configuration: S3Configuration) throws {
        try bucketOnce.withLock { done in
            guard !done.contains(configuration.bucket) else { return }
            let client = S3Client(configuration: configuration)
            let head = try client.send(S3Request(.HEAD, key: nil))
            if head.status == 404 {
                let created = try client.send(S3Request(.PUT, key: nil))
                guard created.ok || created.status == 409 else {
                    throw client.error(for: created, S3Request(.PUT, key: nil))
                }
            }
            done.insert(configuration.bucket)
        }
    }

    private static let bucketOnce = LockedSet()
}

final class LockedSet: @unchecked Sendable {
    private let lock = NSLock()
    private var set: Set<String> = []
    func withLock<T>(_ body: (inout Set<String>) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&set)
    }
}
