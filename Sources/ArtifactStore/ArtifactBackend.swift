import Foundation

/// Where an ``ArtifactStore`` keeps its bytes: the local directory (``LocalDirectoryBackend``,
/// the default), or an S3-compatible object store (`S3Backend` in the `S3Store` module).
///
/// The store above does all the hashing, compression, validation and bookkeeping; a backend only
/// moves bytes and provides four guarantees. Everything is synchronous and may block.
///
/// ## What a backend must provide
///
/// 1. **Put-if-absent for blobs.** ``stageBlob()`` returns an upload that receives the
///    compressed frame; ``BlobUpload/commit(as:)`` makes it visible under its digest all at once
///    and durably, or — when a blob of that digest already exists — discards the upload and
///    refreshes the existing blob's timestamp (so a collector holding to a grace period keeps
///    it). A blob is never visible half-written. (S3: multipart upload to a staging key, then a
///    conditional copy with `If-None-Match: *`; or `PutObject` with `If-None-Match: *`.)
/// 2. **Atomic replace for documents** (manifests, alias files, the store marker):
///    ``replaceDocument(_:with:)`` leaves either the old or the new bytes, durably, never a mix.
///    (S3: a single `PutObject`.)
/// 3. **Mutual exclusion for read-modify-write**: ``withExclusiveLock(_:)`` runs its body while no
///    other process or thread runs one on the same store. Version allocation and alias moves
///    rely on it. (S3: a lease object written with a conditional put and an expiry, or a
///    compare-and-swap on the alias and index objects; or an external lock service.)
/// 4. **Listing of one prefix**: ``listDocuments(prefix:)`` returns the immediate children under
///    one prefix (S3: `ListObjectsV2` with `delimiter=/`). The store never lists more than one
///    prefix to answer a question about one name; only ``ArtifactStore/verify()``,
///    ``ArtifactStore/gc(gracePeriod:dryRun:)`` and ``ArtifactStore/du()`` walk everything.
///
/// Rename is not assumed to exist, to be cheap or to be atomic across prefixes: the local backend
/// uses it internally because POSIX makes it the atomic step.
///
/// Conforming types must be safe to use from several threads at once.
public protocol ArtifactBackend: Sendable, CustomStringConvertible {
    /// Starts an upload of one compressed blob.
    func stageBlob() throws -> any BlobUpload
    /// Opens a blob's stored (compressed) bytes for reading; throws `notFound` when absent.
    func openBlob(_ digest: BlobDigest) throws -> any BlobSource
    /// A blob's stored size and last-touched time, or nil when absent.
    func blobInfo(_ digest: BlobDigest) throws -> BlobInfo?
    /// Confirms, while holding the lock, that a blob is present and durable, refreshing its
    /// timestamp; false when absent.
    func confirmBlob(_ digest: BlobDigest) throws -> Bool
    /// Every stored blob, in no particular order.
    func listBlobs() throws -> [BlobDigest]
    /// Deletes a blob (garbage collection only).
    func deleteBlob(_ digest: BlobDigest) throws
    /// Where a blob lives, for messages (a path or a URL).
    func location(of digest: BlobDigest) -> String

    /// A document's bytes, or nil when absent. Keys look like `models/price/3.json`.
    func readDocument(_ key: String) throws -> [UInt8]?
    /// Replaces (or creates) a document atomically and durably. When it throws, readers see the
    /// old bytes (or no document), as far as the backend can ensure it.
    func replaceDocument(_ key: String, with bytes: [UInt8]) throws
    /// The immediate children of `prefix` (which ends in `/`), names only, in no particular order.
    func listDocuments(prefix: String) throws -> [String]
    /// A document's size in bytes, or nil when absent.
    func documentSize(_ key: String) throws -> Int64?

    /// Runs `body` while holding the store's exclusive lock (blocking until it is free).
    func withExclusiveLock<T>(_ body: () throws -> T) throws -> T
    /// Uploads abandoned by writers that died (left for ``ArtifactStore/verify()`` to report).
    func abandonedUploads() throws -> [String]
}

/// One blob upload in progress: receives compressed bytes, then commits or aborts.
///
/// Used by one thread at a time; dropping it without ``commit(as:)`` abandons the upload.
public protocol BlobUpload: AnyObject {
    /// Appends compressed bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the upload durable and visible as `digest`, unless that blob already exists.
    /// Returns true when this upload created the blob, false when it already existed.
    func commit(as digest: BlobDigest) throws -> Bool
    /// Discards the upload (best effort; never throws).
    func abort()
}

/// A blob's stored bytes, read front to back.
public protocol BlobSource: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// What a backend knows about a stored blob without reading it.
public struct BlobInfo: Sendable, Hashable {
    /// Bytes stored (compressed).
    public var storedSize: Int64
    /// When it was written or last confirmed.
    public var lastTouched: Date

    /// Creates an info.
    public init(storedSize: Int64, lastTouched: Date) {
        self.storedSize = storedSize
        self.lastTouched = lastTouched
    }
}
