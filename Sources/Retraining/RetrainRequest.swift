import Catalog
import Foundation
import HyperTuning
import TreeTraining

/// What a retraining run should do. Every field has a default, so `RetrainRequest()` means
/// "retrain the production model on the newest data with its own parameters".
public struct RetrainRequest: Sendable {
    /// The model name to retrain.
    public var model: String
    /// The dataset to train on (its newest version).
    public var dataset: String
    /// New labelled rows (CSV with a header) to append to the dataset first, cleaned and
    /// deduplicated into a new dataset version.
    public var newRowsCSV: [UInt8]?
    /// Parameters for the challenger; nil reuses the production model's (or the defaults).
    public var configuration: TrainingConfiguration?
    /// Search the parameters within this budget first (on the challenger's training rows);
    /// the best ones train the challenger. Overrides `configuration`.
    public var tuning: TuningConfiguration?
    /// The challenger must beat the champion's holdout RMSE by this fraction to be promoted
    /// (0.01: at least 1% lower).
    public var promotionMargin: Double
    /// Fraction of the dataset held out to compare challenger and champion when there are too
    /// few new rows to compare on (the champion is then refitted on the challenger's rows).
    public var holdoutFraction: Double
    /// Fraction of the new rows (those production never trained on) held out to compare
    /// challenger and champion; the rest train the challenger.
    public var freshHoldoutFraction: Double
    /// How new labels are screened against production before they are used.
    public var labels: LabelPolicy
    /// What a challenger that wins overall must also not do (per-decile regression, coverage).
    public var quality: QualityPolicy
    /// Guardrails the operator overrides for this run (recorded in the outcome).
    public var accept: Set<Guardrail>
    /// Most rows the first retrain with new rows sets aside as the reference set (a fifth of
    /// the new rows at most).
    public var referenceRows: Int
    /// Apply the new rows' market level to the challenger (see `RetrainPipeline.marketShift`).
    public var followMarketLevel: Bool
    /// Seed of the holdout split and of training.
    public var seed: UInt64
    /// Who asked, for the alias history.
    public var requestedBy: String

    public init(
        model: String = "diamonds", dataset: String = "diamonds", newRowsCSV: [UInt8]? = nil,
        configuration: TrainingConfiguration? = nil, tuning: TuningConfiguration? = nil,
        promotionMargin: Double = 0.01, holdoutFraction: Double = 0.1, freshHoldoutFraction: Double = 0.25,
        labels: LabelPolicy = LabelPolicy(), quality: QualityPolicy = QualityPolicy(), accept: Set<Guardrail> = [],
        referenceRows: Int = 2000, followMarketLevel: Bool = true, seed: UInt64 = 42,
        requestedBy: String = "loupe"
    ) {
        self.model = model
        self.dataset = dataset
        self.newRowsCSV = newRowsCSV
        self.configuration = configuration
        self.tuning = tuning
        self.promotionMargin = promotionMargin
        self.holdoutFraction = holdoutFraction
        self.freshHoldoutFraction = freshHoldoutFraction
        self.labels = labels
        self.quality = quality
        self.accept = accept
        self.referenceRows = referenceRows
        self.followMarketLevel = followMarketLevel
        self.seed = seed
        self.requestedBy = requestedBy
    }
}

/// How a retraining run ended.
public struct RetrainOutcome: Sendable, Codable, Equatable {
    /// The model retrained.
    public var modelName: String
    /// The dataset version the challenger trained on.
    public var datasetVersion: Int
    /// The challenger's model version (registered whether or not it was promoted); nil when a
    /// guardrail refused the run before training.
    public var challengerVersion: Int?
    /// The production version it was compared with, if there was one.
    public var championVersion: Int?
    /// Holdout RMSE in dollars of both, on the same rows.
    public var challengerRMSE: Double?
    public var championRMSE: Double?
    /// Rows in the shared holdout.
    public var holdoutRows: Int
    /// How the champion was measured.
    public var comparison: Comparison
    /// The tuning run that chose the challenger's parameters, if one ran.
    public var tuningRun: String?
    /// Whether the challenger became production.
    public var promoted: Bool
    /// Why it was or was not promoted, for a person.
    public var reason: String
    /// The guardrail that refused the run, if one did (e.g. `label-shift`).
    public var rejectedBy: String?
    /// Guardrails the operator overrode for this run.
    public var accepted: [String]?
    /// New rows set aside as label outliers (the first 100), and how many there were.
    public var labelOutliers: [LabelScreen.Outlier]?
    public var labelOutlierCount: Int?
    /// New rows (never seen by production) the challenger trained on.
    public var newTrainingRows: Int?
    /// The new rows' price level relative to the challenger's trees, applied to it (e.g. 1.08).
    public var marketLevel: Double?
    /// The reference set both were measured on (no version trains on it), and their RMSE there.
    public var referenceVersion: Int?
    public var referenceRows: Int?
    public var challengerReferenceRMSE: Double?
    public var championReferenceRMSE: Double?

    /// How challenger and champion were compared.
    public enum Comparison: String, Sendable, Codable {
        /// There was no production model: the challenger is promoted.
        case noChampion
        /// On rows added since production's dataset version, which neither model trained on.
        case freshRows
        /// No such rows: production's parameters were refitted on the challenger's training
        /// rows, and both measured on the same held-out rows.
        case refit
    }
}

extension Catalog {
    /// Saves a retraining outcome as `records/retrains/<model>-<version>.json`.
    public func save(_ outcome: RetrainOutcome) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let version = outcome.challengerVersion else { return }  // refused before training: no version
        try store.putRecord(kind: "retrains", id: "\(outcome.modelName)-\(version)",
                            json: Array(try encoder.encode(outcome)))
    }

    /// The retraining outcome that produced a model version, if a retrain made it.
    public func retrainOutcome(model: String, version: Int) -> RetrainOutcome? {
        guard let bytes = try? store.record(kind: "retrains", id: "\(model)-\(version)") else { return nil }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try? decoder.decode(RetrainOutcome.self, from: Data(bytes))
    }
}
