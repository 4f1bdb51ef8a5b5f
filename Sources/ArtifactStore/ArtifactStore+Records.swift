import Foundation

/// Records: small JSON documents that are not versioned artifacts but change as work goes on
/// — a tuning run's trials, say — at `records/<kind>/<id>.json`, each replaced atomically.
/// They reference no blobs, so gc and verify only check that they parse.
extension ArtifactStore {
    /// Writes (or replaces) a record; `json` must be valid JSON.
    public func putRecord(kind: String, id: String, json: [UInt8]) throws {
        try ArtifactName.validate(kind, kind: "record kind")
        try ArtifactName.validate(id, kind: "record")
        try ManifestCoding.validateJSON(json, what: "record \(kind)/\(id)")
        try backend.replaceDocument(Self.recordKey(kind, id), with: json)
    }

    /// A record's JSON, or nil when there is none.
    public func record(kind: String, id: String) throws -> [UInt8]? {
        try ArtifactName.validate(kind, kind: "record kind")
        try ArtifactName.validate(id, kind: "record")
        return try backend.readDocument(Self.recordKey(kind, id))
    }

    /// The ids of a kind's records, sorted.
    public func recordIDs(kind: String) throws -> [String] {
        try ArtifactName.validate(kind, kind: "record kind")
        return try backend.listDocuments(prefix: "records/\(kind)/")
            .filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }
            .sorted()
    }

    static func recordKey(_ kind: String, _ id: String) -> String { "records/\(kind)/\(id).json" }

    /// Stores `bytes` as a blob attached to record `kind/id` (`{"blobs": [digest], …}` plus
    /// `fields`), so gc keeps it while the record exists. For derived artifacts such as a
    /// model's report page.
    @discardableResult
    public func attach(kind: String, id: String, bytes: [UInt8], fields: [String: String] = [:]) throws -> BlobDigest {
        let digest = try putBlob(bytes)
        var object: [String: Any] = fields
        object["blobs"] = [digest.description]
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try putRecord(kind: kind, id: id, json: Array(json))
        return digest
    }

    /// The blob attached to record `kind/id`, or nil when there is none.
    public func attachment(kind: String, id: String) throws -> [UInt8]? {
        guard let json = try record(kind: kind, id: id),
            let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let first = (object["blobs"] as? [String])?.first, let digest = BlobDigest(first)
        else { return nil }
        return try readBlob(digest)
    }
}
