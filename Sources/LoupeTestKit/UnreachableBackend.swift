import ArtifactStore
import Synchronization

/// A store backend that can be cut off: while `down`, every call fails as an unreachable
/// store's would (the lock too), and nothing reaches the directory underneath.
public final class UnreachableBackend: ArtifactBackend, @unchecked Sendable {
    public let base: LocalDirectoryBackend
    public let down = Atomic<Bool>(false)
    /// Calls refused while down.
    public let refused = Atomic<Int>(0)

    public init(root: String) throws { base = try LocalDirectoryBackend(root: root) }

    public var description: String { "unreachable-on-demand \(base)" }

    private func reach() throws {
        if down.load(ordering: .relaxed) {
            refused.add(1, ordering: .relaxed)
            throw StoreError(.io, "the store is unreachable (test outage)")
        }
    }

    public func stageBlob() throws -> any BlobUpload { try reach(); return try base.stageBlob() }
    public func openBlob(_ digest: BlobDigest) throws -> any BlobSource { try reach(); return try base.openBlob(digest) }
    public func blobInfo(_ digest: BlobDigest) throws -> BlobInfo? { try reach(); return try base.blobInfo(digest) }
    public func confirmBlob(_ digest: BlobDigest) throws -> Bool { try reach(); return try base.confirmBlob(digest) }
    public func listBlobs() throws -> [BlobDigest] { try reach(); return try base.listBlobs() }
    public func deleteBlob(_ digest: BlobDigest) throws { try reach(); try base.deleteBlob(digest) }
    public func location(of digest: BlobDigest) -> String { base.location(of: digest) }
    public func readDocument(_ key: String) throws -> [UInt8]? { try reach(); return try base.readDocument(key) }
    public func replaceDocument(_ key: String, with bytes: [UInt8]) throws { try reach(); try base.replaceDocument(key, with: bytes) }
    public func listDocuments(prefix: String) throws -> [String] { try reach(); return try base.listDocuments(prefix: prefix) }
    public func documentSize(_ key: String) throws -> Int64? { try reach(); return try base.documentSize(key) }
    public func withExclusiveLock<T>(_ body: () throws -> T) throws -> T { try reach(); return try base.withExclusiveLock(body) }
    public func abandonedUploads() throws -> [String] { try reach(); return try base.abandonedUploads() }
}
