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
}
