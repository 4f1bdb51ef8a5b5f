import ArtifactStore
import Foundation
import HyperTuning

extension Catalog {
    /// The record kind of tuning runs: `records/tuning/<id>.json`.
    public static let tuningRecordKind = "tuning"

    /// Saves a tuning run (after every batch of trials, so it can be watched and resumed).
    public func save(_ run: TuningRun) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try store.putRecord(kind: Self.tuningRecordKind, id: run.id, json: Array(try encoder.encode(run)))
    }

    /// A saved tuning run.
    public func tuningRun(_ id: String) throws -> TuningRun {
        guard let bytes = try store.record(kind: Self.tuningRecordKind, id: id) else {
            throw CatalogError("no tuning run \"\(id)\"; `loupe tune --list` shows them")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(TuningRun.self, from: Data(bytes))
    }

    /// The ids of saved tuning runs, oldest first.
    public func tuningRunIDs() throws -> [String] {
        try store.recordIDs(kind: Self.tuningRecordKind)
    }
}
