import Foundation

/// What ``ArtifactStore/verify()`` found.
public struct VerifyReport: Sendable, Hashable {
    /// A blob whose bytes do not decompress or do not hash to its name.
    public struct CorruptBlob: Sendable, Hashable {
        /// The blob's name.
        public var digest: BlobDigest
        /// Where it is stored.
        public var location: String
        /// What was wrong.
        public var message: String
    }

    /// A blob that a manifest references but the store does not hold.
    public struct MissingBlob: Sendable, Hashable {
        /// The blob's name.
        public var digest: BlobDigest
        /// The manifest keys that reference it.
        public var referencedBy: [String]
    }

    /// A manifest or alias file that cannot be read, or that points at a version that does not exist.
    public struct BrokenDocument: Sendable, Hashable {
        /// The document key (e.g. `models/price/3.json`).
        public var key: String
        /// What was wrong.
        public var message: String
    }

    /// Blobs re-hashed.
    public var blobsChecked = 0
    /// Manifests and alias files read.
    public var documentsChecked = 0
    /// Blobs that failed the re-hash.
    public var corruptBlobs: [CorruptBlob] = []
    /// Referenced blobs that are absent.
    public var missingBlobs: [MissingBlob] = []
    /// Unreadable manifests and dangling version references.
    public var brokenDocuments: [BrokenDocument] = []
    /// Partial files left by writers that died (harmless; the next open removes them).
    public var orphanTempFiles: [String] = []

    /// True when every blob is intact and every reference resolves. Orphan temp files do not
    /// count: they are garbage, not damage.
    public var ok: Bool { corruptBlobs.isEmpty && missingBlobs.isEmpty && brokenDocuments.isEmpty }
}

/// What ``ArtifactStore/gc(gracePeriod:dryRun:)`` removed, or would remove.
public struct GCReport: Sendable, Hashable {
    /// An unreferenced blob past the grace period.
    public struct Candidate: Sendable, Hashable {
        /// The blob's name.
        public var digest: BlobDigest
        /// Its stored size.
        public var storedBytes: Int64
        /// When it was written or last confirmed.
        public var lastTouched: Date
    }

    /// True when nothing was deleted.
    public var dryRun: Bool
    /// Blobs examined.
    public var blobsExamined = 0
    /// Blobs kept because a manifest references them.
    public var referenced = 0
    /// Unreferenced blobs kept because they are younger than the grace period (a write may be
    /// about to reference them).
    public var tooYoung: [BlobDigest] = []
    /// Unreferenced blobs past the grace period: deleted, unless this was a dry run.
    public var collected: [Candidate] = []

    /// Stored bytes of ``collected``.
    public var bytesCollected: Int64 { collected.reduce(0) { $0 + $1.storedBytes } }
}

/// Space used by the store, from ``ArtifactStore/du()``.
public struct UsageReport: Sendable, Hashable {
    /// Usage of one group of blobs.
    public struct Blobs: Sendable, Hashable {
        /// How many blobs.
        public var count = 0
        /// Their content size (uncompressed).
        public var rawBytes: Int64 = 0
        /// Their size on disk (compressed).
        public var storedBytes: Int64 = 0

        /// raw / stored (1 for an empty group).
        public var compressionRatio: Double { storedBytes == 0 ? 1 : Double(rawBytes) / Double(storedBytes) }

        static func + (a: Blobs, b: Blobs) -> Blobs {
            Blobs(count: a.count + b.count, rawBytes: a.rawBytes + b.rawBytes, storedBytes: a.storedBytes + b.storedBytes)
        }
    }

    /// Blobs referenced by a dataset manifest.
    public var datasets = Blobs()
    /// Blobs referenced by a model manifest and by no dataset manifest.
    public var models = Blobs()
    /// Blobs no manifest references (garbage-collection candidates once old enough).
    public var other = Blobs()
    /// Manifests, alias files and the store marker.
    public var documentCount = 0
    /// Their total size.
    public var documentBytes: Int64 = 0

    /// All blobs: `datasets + models + other`.
    public var blobs: Blobs { datasets + models + other }
    /// Everything stored: all blobs plus documents.
    public var totalStoredBytes: Int64 { blobs.storedBytes + documentBytes }
}
