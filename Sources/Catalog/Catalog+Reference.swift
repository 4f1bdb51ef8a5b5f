import ArtifactStore
import DataCleaning
import Foundation

/// A dataset's reference set: trusted labelled rows set aside so that every retrain measures
/// challenger and champion on the same fixed rows, which no model version trains on. It is a
/// dataset of its own, `<dataset>-reference`, so it is versioned like any other; it changes only
/// by an explicit `loupe reference refresh`.
extension Catalog {
    /// The name of `dataset`'s reference set.
    public static func referenceName(of dataset: String) -> String { dataset + "-reference" }

    /// The newest version of `dataset`'s reference set and its rows, if one was set aside.
    public func reference(of dataset: String) throws -> (manifest: DatasetManifest, table: DiamondTable)? {
        guard let manifest = try store.latestDataset(name: Self.referenceName(of: dataset)) else { return nil }
        return (manifest, try table(of: manifest))
    }

    /// Sets aside `rows` of `table` (a version of `dataset`) as a new version of its reference set.
    @discardableResult
    public func setAsideReference(
        _ rows: [Int], of table: DiamondTable, from version: DatasetManifest, source: String
    ) throws -> DatasetManifest {
        // The stored clean CSV has one line per row, in table order, after the header.
        let csv = try store.readBlob(version.cleanBlob)
        let lines = csv.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let chosen = Set(rows)
        var out = Array(lines[0]) + [UInt8(ascii: "\n")]
        for (i, line) in lines.dropFirst().enumerated() where chosen.contains(i) {
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        return try ingest(csv: out, dataset: Self.referenceName(of: version.name), source: source).manifest
    }

    /// `table` without the rows of `dataset`'s reference set: what any version may train on.
    public func trainingTable(_ table: DiamondTable, dataset: String) throws -> DiamondTable {
        guard let reference = try reference(of: dataset) else { return table }
        let keys = Set((0..<reference.table.count).map { RowValues(reference.table, $0) })
        return table.rows((0..<table.count).filter { !keys.contains(RowValues(table, $0)) })
    }
}

/// A row's values, for finding the same stone at the same price in two tables.
public struct RowValues: Hashable, Sendable {
    var values: [Double]

    public init(_ table: DiamondTable, _ row: Int) {
        values = table.columns.map { $0[row] } + [table.price[row]]
    }
}
