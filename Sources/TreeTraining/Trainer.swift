import DataCleaning
import DiamondSchema
import Foundation
import LoupeUtilities
import TreeModel

/// Trains a calibrated diamond-price model from a clean table.
///
/// The rows are shuffled with the seed and split three ways: a calibration part (never
/// trained on; its residuals calibrate the price ranges and give the holdout metrics), a
/// validation part for early stopping (only when early stopping is on; its residuals join the
/// calibration rows' for the ranges), and the rest to train. How the ranges' width varies
/// between stones is fitted on out-of-fold residuals of the training rows (`calibrateRanges`).
public struct Trainer: Sendable {
    public var configuration: TrainingConfiguration

    public init(configuration: TrainingConfiguration = TrainingConfiguration()) {
        self.configuration = configuration
    }

    /// Decides after each round whether training should stop now (e.g. a tuner pruning a
    /// weak trial); the trees so far (up to the best validation round) are kept.
    public typealias StopCondition = (TrainingProgress) -> Bool

    /// Trains, calibrates and measures a model on `data`.
    public func train(
        _ data: DiamondTable, progress: ((TrainingProgress) -> Void)? = nil, shouldStop: StopCondition? = nil
    ) throws(TrainingError) -> TrainedModel {
        let clock = ContinuousClock()
        let started = clock.now
        let c = configuration
        try c.validate()
        try Self.check(data, target: c.target)
        var random = SeededRandom(seed: c.seed ^ 0x5EED_DA7A)
        let order = random.permutation(data.count)
        let calibrationCount = Int((Double(data.count) * c.calibrationFraction).rounded())
        let validationCount = c.earlyStoppingRounds > 0 ? Int((Double(data.count) * c.validationFraction).rounded()) : 0
        let calibrationRows = Array(order[0..<calibrationCount]).sorted()
        let validationRows = Array(order[calibrationCount..<(calibrationCount + validationCount)]).sorted()
        let trainRows = Array(order[(calibrationCount + validationCount)...]).sorted()
        return try fit(
            data, trainRows: trainRows, validationRows: validationRows, calibrationRows: calibrationRows,
            started: started, progress: progress, shouldStop: shouldStop)
    }

    /// Trains on `train`, early-stopping on `validation` (when configured), without
    /// calibration; the report's holdout metrics are measured on `validation`. For tuning and
    /// cross-validation, where the caller owns the split.
    public func train(
        _ train: DiamondTable, validation: DiamondTable, progress: ((TrainingProgress) -> Void)? = nil,
        shouldStop: StopCondition? = nil
    ) throws(TrainingError) -> TrainedModel {
        let started = ContinuousClock().now
        try configuration.validate()
        try Self.check(train, target: configuration.target)
        try Self.check(validation, target: configuration.target)
        var data = train
        data.append(contentsOf: validation)
        return try fit(
            data, trainRows: Array(0..<train.count), validationRows: Array(train.count..<data.count),
            calibrationRows: [], measureOnValidation: true, started: started, progress: progress,
            shouldStop: shouldStop)
    }

    private func fit(
        _ data: DiamondTable, trainRows: [Int], validationRows: [Int], calibrationRows: [Int],
        measureOnValidation: Bool = false, started: ContinuousClock.Instant,
        progress: ((TrainingProgress) -> Void)?, shouldStop: StopCondition?
    ) throws(TrainingError) -> TrainedModel {
        let c = configuration
        guard trainRows.count >= 2 * c.minDataInLeaf else {
            throw TrainingError(
                .invalidData,
                "\(data.count) rows leave \(trainRows.count) to train on; need at least \(2 * c.minDataInLeaf) "
                    + "(2 × min_data_in_leaf)")
        }
        let target = data.price.map { c.target.raw(fromPrice: $0) }
        let result = GradientBooster.boost(
            columns: data.columns, target: target, trainRows: trainRows, validationRows: validationRows,
            configuration: c, featureNames: Ensemble.diamondFeatureNames, progress: progress, shouldStop: shouldStop)
        var model = result.ensemble

        var holdout: EvaluationReport?
        var points: [HoldoutPoint] = []
        if !calibrationRows.isEmpty {
            let calibration = data.rows(calibrationRows)
            let raw = model.rawScores(columns: calibration.columns)
            let calibrationScored = RangeCalibration.ScoredRows(
                raw: raw, target: calibrationRows.map { target[$0] }, columns: calibration.columns)
            model.intervals = Self.calibrateRanges(
                model, data: data, target: target, trainRows: trainRows, validationRows: validationRows,
                calibration: calibrationScored, foldRounds: result.bestRound, configuration: c)
            holdout = EvaluationReport(model: model, rawScores: raw, table: calibration)
            points = Self.sample(raw, table: calibration, model: model)
        } else if measureOnValidation && !validationRows.isEmpty {
            let validation = data.rows(validationRows)
            let raw = model.rawScores(columns: validation.columns)
            holdout = EvaluationReport(model: model, rawScores: raw, table: validation)
            points = Self.sample(raw, table: validation, model: model)
        }

        let report = TrainingReport(
            configuration: c,
            rows: .init(total: data.count, train: trainRows.count, validation: validationRows.count,
                        calibration: calibrationRows.count),
            roundsTrained: result.roundsTrained, bestRound: result.bestRound,
            finalTrainLoss: result.trainLossCurve.last ?? .nan, bestValidationLoss: result.validationLossCurve.min(),
            seconds: result.seconds,
            totalSeconds: (ContinuousClock().now - started).seconds,
            bins: zip(Ensemble.diamondFeatureNames, result.featureBins).map { .init(feature: $0, bins: $1.count) },
            importance: Self.importance(of: model),
            holdout: holdout,
            trainLossCurve: result.trainLossCurve, validationLossCurve: result.validationLossCurve,
            holdoutPoints: points)
        model.metadata = report.modelMetadataJSON()
        return TrainedModel(model: model, report: report)
    }

    /// The price ranges' calibration (docs/TRAINING.md, "Price ranges").
    ///
    /// With range folds (the default) the error scale is fitted on out-of-fold residuals of
    /// every training row, and the conformity scores come from the calibration rows and the
    /// validation rows together: neither fitted the scale, and three times as many scores pin
    /// the quantile far better than the calibration rows alone (its sd, 0.65 points of coverage
    /// on the bundled data, moved every group of stones together). The validation rows only
    /// chose the stopping round. Without folds (or with too few rows for them) the validation
    /// rows fit the scale, else the training residuals do, and the calibration rows alone give
    /// the scores.
    static func calibrateRanges(
        _ model: Ensemble, data: DiamondTable, target: [Double], trainRows: [Int], validationRows: [Int],
        calibration: RangeCalibration.ScoredRows, foldRounds: Int, configuration c: TrainingConfiguration
    ) -> ConformalIntervals? {
        func scored(_ rows: [Int], raw: [Double]? = nil) -> RangeCalibration.ScoredRows {
            let table = data.rows(rows)
            return RangeCalibration.ScoredRows(
                raw: raw ?? model.rawScores(columns: table.columns), target: rows.map { target[$0] }, columns: table.columns)
        }
        if c.rangeFolds >= 2, foldRounds >= 1,
            let outOfFold = OutOfFoldScores.rawScores(
                columns: data.columns, target: target, rows: trainRows, folds: c.rangeFolds, rounds: foldRounds,
                configuration: c)
        {
            var scores = calibration
            if !validationRows.isEmpty { scores.append(scored(validationRows)) }
            return RangeCalibration.calibrate(scaleRows: scored(trainRows, raw: outOfFold), calibration: scores)
        }
        // The validation rows only chose the stopping round: their residuals are honest. Without
        // them the training rows' residuals fit the scale (the trees partly learned those, so
        // rare stones' error is under-rated; the calibration rows stay untouched either way).
        let scaleRows = validationRows.isEmpty ? RangeCalibration.scaleRowSample(trainRows) : validationRows
        return RangeCalibration.calibrate(scaleRows: scored(scaleRows), calibration: calibration)
    }

    /// Up to 1,000 evenly spaced holdout rows with their estimates, for the report's charts.
    static func sample(_ raw: [Double], table: DiamondTable, model: Ensemble) -> [HoldoutPoint] {
        let step = max(1, raw.count / 1000)
        let rows = Array(stride(from: 0, to: raw.count, by: step))
        let estimates = model.estimates(raw: rows.map { raw[$0] }, columns: table.columns.map { c in rows.map { c[$0] } })
        return zip(rows, estimates).map { row, e in
            HoldoutPoint(actual: table.price[row], price: e.price, low: e.low, high: e.high)
        }
    }

    static func check(_ data: DiamondTable, target: TargetTransform) throws(TrainingError) {
        guard data.count > 0 else { throw TrainingError(.invalidData, "no rows to train on") }
        for (f, column) in data.columns.enumerated() {
            if let i = column.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError(
                    .invalidData, "row \(data.sourceRow[i]): \(Feature.allCases[f].name) is \(column[i]), not a finite number")
            }
        }
        if let i = data.price.firstIndex(where: { !$0.isFinite || (target == .logPrice && $0 <= 0) }) {
            throw TrainingError(.invalidData, "row \(data.sourceRow[i]): price \(data.price[i]) cannot be trained on")
        }
    }

    static func importance(of model: Ensemble) -> [FeatureImportance] {
        var gain = [Double](repeating: 0, count: model.featureCount)
        var splits = [Int](repeating: 0, count: model.featureCount)
        for tree in model.trees {
            for (f, g) in zip(tree.splitFeature, tree.splitGain) {
                gain[Int(f)] += g
                splits[Int(f)] += 1
            }
        }
        let total = max(gain.reduce(0, +), .leastNormalMagnitude)
        return model.featureNames.indices.map {
            FeatureImportance(feature: model.featureNames[$0], gainShare: gain[$0] / total, splits: splits[$0])
        }
    }
}

/// One holdout row: its actual price and the model's estimate and range.
public struct HoldoutPoint: Sendable, Codable, Equatable {
    public var actual: Double
    public var price: Double
    public var low: Double
    public var high: Double
}

/// A trained model and the report of how it was made.
public struct TrainedModel: Sendable {
    public var model: Ensemble
    public var report: TrainingReport
}

/// How much a feature's splits reduced the loss.
public struct FeatureImportance: Sendable, Equatable, Codable {
    public var feature: String
    /// Share of the total split gain, 0…1.
    public var gainShare: Double
    /// Number of splits on the feature.
    public var splits: Int
}

/// Everything about a training run: its inputs, its course and its holdout quality.
public struct TrainingReport: Sendable, Codable {
    public struct Rows: Sendable, Codable, Equatable {
        public var total, train, validation, calibration: Int
    }

    public struct Bins: Sendable, Codable, Equatable {
        public var feature: String
        public var bins: Int
    }

    public var configuration: TrainingConfiguration
    public var rows: Rows
    /// Rounds trained before stopping (early stopping may end before `configuration.rounds`).
    public var roundsTrained: Int
    /// Trees kept: the round with the best validation loss.
    public var bestRound: Int
    /// RMSE on the training rows after the last round, target scale.
    public var finalTrainLoss: Double
    /// Best RMSE on the validation rows, target scale (nil without early stopping).
    public var bestValidationLoss: Double?
    /// Wall time of binning and boosting.
    public var seconds: Double
    /// Wall time of the whole `train` call: splitting, binning, boosting, calibration, holdout metrics.
    public var totalSeconds: Double
    public var bins: [Bins]
    public var importance: [FeatureImportance]
    /// Metrics in dollars on the calibration rows (never trained on).
    public var holdout: EvaluationReport?
    public var trainLossCurve: [Double]
    public var validationLossCurve: [Double]
    /// A sample of holdout rows (actual price, estimate and range), for predicted-vs-actual charts.
    public var holdoutPoints: [HoldoutPoint]?

    /// The report as pretty JSON.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The compact JSON stored inside the model file: what made the model, without timings or
    /// curves, so the same seed, data and threads give byte-identical model files.
    func modelMetadataJSON() -> String {
        struct Metadata: Encodable {
            var configuration: TrainingConfiguration
            var rows: Rows
            var roundsTrained: Int
            var bestRound: Int
            var importance: [FeatureImportance]
            var holdout: RegressionMetrics?
            var holdoutRanges: RangeMetrics?
        }
        let metadata = Metadata(
            configuration: configuration, rows: rows, roundsTrained: roundsTrained, bestRound: bestRound,
            importance: importance, holdout: holdout?.metrics, holdoutRanges: holdout?.ranges)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(metadata)) ?? Data(), as: UTF8.self)
    }
}
