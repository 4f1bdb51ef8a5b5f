import Foundation

/// One version of a model: `models/<name>/<version>.json`.
///
/// Written once, never changed. Every blob it names was durable, and its dataset version existed,
/// before the manifest was written.
public struct ModelManifest: Sendable, Hashable, Codable {
    /// The model name.
    public var name: String
    /// The version, 1, 2, 3… per name.
    public var version: Int
    /// The serialised model (opaque bytes to the store).
    public var modelBlob: BlobDigest
    /// The dataset version it was trained on.
    public var dataset: DatasetReference
    /// The training configuration, opaque JSON (an object).
    public var hyperparameters: JSONValue
    /// Evaluation metrics by name (all finite).
    public var metrics: [String: Double]
    /// The training report (JSON), if any.
    public var reportBlob: BlobDigest?
    /// The version this one was derived from, if any.
    public var parent: Int?
    /// When the version was registered (UTC, whole seconds).
    public var created: Date
    /// A free-form note.
    public var note: String?

    /// The blobs this manifest references.
    public var blobs: [BlobDigest] { [modelBlob] + [reportBlob].compactMap { $0 } }
}
