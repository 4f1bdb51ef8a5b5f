import Foundation

/// One version of a dataset: `datasets/<name>/<version>.json`.
///
/// Written once, never changed. Every blob it names was durable before the manifest was written.
public struct DatasetManifest: Sendable, Hashable, Codable {
    /// The dataset name.
    public var name: String
    /// The version, 1, 2, 3… per name.
    public var version: Int
    /// The clean CSV.
    public var cleanBlob: BlobDigest
    /// The quarantined rows (CSV with the reason per row), if any were kept.
    public var quarantineBlob: BlobDigest?
    /// The cleaning report (JSON), stored as a blob so manifests stay small.
    public var reportBlob: BlobDigest?
    /// Rows in, clean and quarantined.
    public var counts: RowCounts
    /// The version this one was derived from, if any.
    public var parent: Int?
    /// When the version was registered (UTC, whole seconds).
    public var created: Date
    /// A free-form note.
    public var note: String?
    /// Where the data came from (a path, a URL, "bundled"), free-form.
    public var source: String?

    /// The blobs this manifest references.
    public var blobs: [BlobDigest] { [cleanBlob] + [quarantineBlob, reportBlob].compactMap { $0 } }

    /// A reference to this version, for a model manifest.
    public var reference: DatasetReference { DatasetReference(name: name, version: version) }
}

/// Row counts of one dataset version.
public struct RowCounts: Sendable, Hashable, Codable {
    /// Data rows read from the source.
    public var rowsIn: Int
    /// Rows that passed every cleaning rule.
    public var clean: Int
    /// Rows kept aside, each with its reason.
    public var quarantined: Int

    /// Creates counts.
    public init(rowsIn: Int, clean: Int, quarantined: Int) {
        self.rowsIn = rowsIn
        self.clean = clean
        self.quarantined = quarantined
    }
}

/// A dataset version named by a model manifest.
public struct DatasetReference: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The dataset name.
    public var name: String
    /// The dataset version.
    public var version: Int

    /// Creates a reference.
    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }

    public var description: String { "\(name)@\(version)" }
}
