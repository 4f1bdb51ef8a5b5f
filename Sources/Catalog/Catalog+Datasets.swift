import ArtifactStore
import BundledData
import DataCleaning
import DiamondSchema
import Foundation

/// What `ingest` stored.
public struct IngestResult: Sendable {
    /// The new dataset version.
    public var manifest: DatasetManifest
    /// The cleaning of the ingested file.
    public var cleaning: CleaningResult
    /// When appending: rows of the file already present in the previous version.
    public var duplicatesOfEarlierRows: Int
}

extension Catalog {
    /// Cleans `csv` and stores the clean rows, the quarantine and the report as a new version
    /// of `dataset`. With `append`, the new version is the previous version's rows plus the
    /// new clean rows, without rows the previous version already had.
    @discardableResult
    public func ingest(
        csv: [UInt8], dataset: String, source: String, append: Bool = false,
        configuration: CleaningConfiguration = .standard
    ) throws -> IngestResult {
        try ArtifactName.validate(dataset, kind: "dataset")
        let cleaned = try Cleaner.clean(csv: csv, configuration: configuration)
        var clean = cleaned.cleanCSV()
        var duplicates = 0
        var parent: DatasetManifest?
        if append, let previous = try store.latestDataset(name: dataset) {
            parent = previous
            // Previous rows first, then the new ones; the duplicate rule keeps the first copy.
            var combined = try store.readBlob(previous.cleanBlob)
            if combined.last != UInt8(ascii: "\n") { combined.append(UInt8(ascii: "\n")) }
            combined.append(contentsOf: clean.drop { $0 != UInt8(ascii: "\n") }.dropFirst())
            let merged = try Cleaner.clean(csv: combined, configuration: configuration)
            duplicates = merged.report.quarantinedRows
            clean = merged.cleanCSV()
        }
        let report = IngestReport(
            source: source, cleaning: cleaned.report, appendedTo: parent?.version,
            previousRows: parent?.counts.clean, duplicatesOfEarlierRows: duplicates)
        let rowsIn = (parent?.counts.clean ?? 0) + cleaned.report.rowsIn
        let cleanRows = (parent?.counts.clean ?? 0) + cleaned.report.cleanRows - duplicates
        let manifest = try store.putDataset(
            name: dataset, cleanCSV: clean,
            quarantineCSV: cleaned.quarantine.isEmpty ? nil : cleaned.quarantineCSV(),
            reportJSON: Array(report.json().utf8),
            counts: RowCounts(rowsIn: rowsIn, clean: cleanRows, quarantined: rowsIn - cleanRows),
            parent: parent?.version, note: append && parent != nil ? "appended \(source)" : nil, source: source)
        return IngestResult(manifest: manifest, cleaning: cleaned, duplicatesOfEarlierRows: duplicates)
    }

    /// The newest version of `dataset`. An empty default dataset is first filled with the
    /// bundled diamonds data (version 1); other names must have been ingested.
    public func latestDataset(_ dataset: String = Catalog.defaultDataset) throws -> DatasetManifest {
        if let latest = try store.latestDataset(name: dataset) { return latest }
        guard dataset == Catalog.defaultDataset else {
            throw CatalogError("dataset \"\(dataset)\" has no versions; add one with `loupe ingest FILE.csv --dataset \(dataset)`")
        }
        return try ingest(csv: BundledData.diamondsCSV(), dataset: dataset, source: "bundled").manifest
    }

    /// A dataset version's clean rows, as they were stored (the rules that cleaned them are
    /// not applied again, so a version cleaned with wider ranges reads back whole).
    public func table(of manifest: DatasetManifest) throws -> DiamondTable {
        let csv = try store.readBlob(manifest.cleanBlob)
        let everything = ValidationRanges(
            carat: 0...Double.greatestFiniteMagnitude, depth: 0...Double.greatestFiniteMagnitude,
            table: 0...Double.greatestFiniteMagnitude, dimension: 0...Double.greatestFiniteMagnitude,
            depthTolerance: .infinity)
        let result = try Cleaner.clean(csv: csv, configuration: CleaningConfiguration(ranges: everything, dropDuplicates: false))
        guard result.quarantine.isEmpty else {
            throw CatalogError(
                "dataset \(manifest.name) v\(manifest.version): \(result.quarantine.count) stored rows do not parse "
                    + "(first: \(result.quarantine[0].reasons.joined(separator: "; ")))")
        }
        return result.clean
    }
}

/// The report stored with a dataset version: the cleaning report of the ingested file, and
/// how it was appended.
public struct IngestReport: Sendable, Codable {
    public var source: String
    public var cleaning: CleaningReport
    public var appendedTo: Int?
    public var previousRows: Int?
    public var duplicatesOfEarlierRows: Int

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// A catalog failure that is not the store's own (a missing dataset, a model that is not there).
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
