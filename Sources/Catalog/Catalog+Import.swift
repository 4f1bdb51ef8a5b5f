import ArtifactStore
import DataCleaning
import Foundation
import TreeModel
import TreeTraining

extension Catalog {
    /// The rows `loupe train` holds out for calibration on a dataset of `count` rows with
    /// `configuration`'s seed and calibration fraction (the trainer's own split).
    public static func calibrationRows(count: Int, configuration: TrainingConfiguration = TrainingConfiguration()) -> [Int] {
        var random = SeededRandom(seed: configuration.seed ^ 0x5EED_DA7A)
        let order = random.permutation(count)
        let n = Int((Double(count) * configuration.calibrationFraction).rounded())
        return Array(order[0..<n]).sorted()
    }

    /// What importing registered.
    public struct ImportedModel: Sendable {
        public var manifest: ModelManifest
        /// The model as stored: with its calibration.
        public var model: Ensemble
        /// Accuracy and range quality on the calibration rows.
        public var holdout: EvaluationReport
        public var calibrationRows: Int
    }

    /// Registers a model made by another library (already in the IR, features in diamond order)
    /// as the next version of `name`.
    ///
    /// Its price ranges are calibrated on `dataset`'s holdout: the rows `loupe train` would hold
    /// out with the default settings (`calibrationRows`); the dataset's other rows fit how the
    /// ranges' width varies between stones (`RangeCalibration`). The residuals are honest only if the
    /// other library did not train on those rows; the manifest's hyperparameters record where
    /// the model and its calibration came from.
    public func registerImported(
        _ model: Ensemble, name: String, dataset: DatasetManifest, library: String, source: String, note: String? = nil
    ) throws -> ImportedModel {
        let table = try self.table(of: dataset)
        let rows = Self.calibrationRows(count: table.count)
        let calibration = table.rows(rows)
        let raw = model.rawScores(columns: calibration.columns)
        var calibrated = model
        // The error scale is fitted on the dataset's other rows: whether or not the other
        // library trained on them, they are not calibration rows, so the guarantee holds.
        let isCalibration = Set(rows)
        let scaleIndices = RangeCalibration.scaleRowSample((0..<table.count).filter { !isCalibration.contains($0) })
        let scaleTable = table.rows(scaleIndices)
        calibrated.intervals = RangeCalibration.calibrate(
            scaleRows: Self.scored(model, scaleTable), calibration: Self.scored(model, calibration, raw: raw))
        let holdout = EvaluationReport(model: calibrated, table: calibration)
        let provenance = ImportProvenance(
            importedFrom: library, source: source, target: model.target.name, trees: model.trees.count,
            calibration: "\(rows.count) holdout rows of dataset \(dataset.name) v\(dataset.version) (the rows loupe train holds out)")
        var metrics: [String: Double] = [
            "trees": Double(model.trees.count), "holdout_rows": Double(holdout.metrics.rows), "rmse": holdout.metrics.rmse, "mae": holdout.metrics.mae,
            "mape": holdout.metrics.mape, "r2": holdout.metrics.r2,
        ]
        if let ranges = holdout.ranges {
            metrics["coverage"] = ranges.coverage
            metrics["median_relative_width"] = ranges.medianRelativeWidth
        }
        let parent = try store.latestModel(name: name)?.version
        let manifest = try store.putModel(
            name: name, modelBytes: calibrated.serialized(), dataset: dataset.reference,
            hyperparameters: try Self.json(provenance), metrics: metrics.filter { $0.value.isFinite },
            parent: parent, note: note ?? "imported from \(library): \(source)")
        return ImportedModel(manifest: manifest, model: calibrated, holdout: holdout, calibrationRows: rows.count)
    }
}

extension Catalog {
    /// A table's rows scored by `model`, on the model's target scale.
    static func scored(_ model: Ensemble, _ table: DiamondTable, raw: [Double]? = nil) -> RangeCalibration.ScoredRows {
        RangeCalibration.ScoredRows(
            raw: raw ?? model.rawScores(columns: table.columns), target: table.price.map { model.target.raw(fromPrice: $0) },
            columns: table.columns)
    }
}

/// Where an imported model came from (stored as the manifest's hyperparameters).
struct ImportProvenance: Codable {
    var importedFrom: String
    var source: String
    var target: String
    var trees: Int
    var calibration: String

    enum CodingKeys: String, CodingKey {
        case importedFrom = "imported_from", source, target, trees, calibration
    }
}
