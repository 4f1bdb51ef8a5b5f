import ArtifactStore
import Catalog
import DataCleaning
import Foundation
import HyperTuning
import TreeModel
import TreeTraining

/// The one retraining pipeline behind `loupe retrain` and the `Retrain` call:
///
/// 1. screen new labelled rows against production (`LabelScreen`): a batch whose prices sit far
///    from production's predictions as a whole is refused before it enters the dataset (unless
///    the operator accepts it); single rows far off are set aside as label outliers;
/// 2. take the newest version of the dataset, appending the new rows that passed (cleaned and
///    deduplicated into a new version);
/// 3. hold out rows that are fresh to both contestants: when the dataset has enough rows the
///    production model never saw (added since its dataset version), a slice of those
///    (`freshHoldoutFraction`) is held out and the rest train the challenger with the old rows;
///    otherwise the holdout is drawn from all rows, and since production trained on them, the
///    champion is represented by a *refit*: production's parameters trained on the same
///    training rows as the challenger (so the comparison is like for like);
/// 3. train the challenger on the rest (with the request's parameters, else production's);
/// 4. measure both on the holdout;
/// 5. register the challenger, and promote it only if its holdout RMSE beats the champion's
///    by the margin (or there is no champion); otherwise record why not;
/// 6. hand a promoted model to `onPromoted` (the server swaps it in).
public struct RetrainPipeline: Sendable {
    public let catalog: Catalog
    /// Called with a newly promoted model, before the job reports done.
    public let onPromoted: @Sendable (ModelManifest, Ensemble) -> Void

    public init(catalog: Catalog, onPromoted: @escaping @Sendable (ModelManifest, Ensemble) -> Void = { _, _ in }) {
        self.catalog = catalog
        self.onPromoted = onPromoted
    }

    /// Progress reports: stage, percent (0…100), ETA in seconds if known, message.
    public typealias Progress = (JobStage, Double, Double?, String) -> Void

    public func run(_ request: RetrainRequest, progress: @escaping Progress = { _, _, _, _ in }) throws -> RetrainOutcome {
        guard request.promotionMargin >= 0, request.promotionMargin < 1 else {
            throw CatalogError("promotion margin must be in [0, 1), got \(request.promotionMargin)")
        }
        guard request.holdoutFraction > 0, request.holdoutFraction < 0.5 else {
            throw CatalogError("holdout fraction must be in (0, 0.5), got \(request.holdoutFraction)")
        }
        guard request.freshHoldoutFraction > 0, request.freshHoldoutFraction < 1 else {
            throw CatalogError("fresh holdout fraction must be in (0, 1), got \(request.freshHoldoutFraction)")
        }
        progress(.preparingData, 2, nil, "reading dataset \(request.dataset)")
        var dataset = try catalog.latestDataset(request.dataset)
        let championManifest = try catalog.store.model(name: request.model, alias: .production)
        // Read once: the label screen, the market level and the comparison all use it.
        let production = try championManifest.map { try catalog.ensemble(of: $0) }
        var newRows = request.newRowsCSV
        var screen: LabelScreen?
        var acceptedShift: String?
        if let rows = newRows, let championManifest, let production {
            progress(.preparingData, 3, nil, "screening the new labels against production v\(championManifest.version)")
            let checked = try LabelScreen(rows, production: production, policy: request.labels)
            screen = checked
            if let shift = checked.shift, !request.accept.contains(.labelShift) {
                return RetrainOutcome(
                    modelName: request.model, datasetVersion: dataset.version, challengerVersion: nil,
                    championVersion: championManifest.version, challengerRMSE: nil, championRMSE: nil, holdoutRows: 0,
                    comparison: .freshRows, tuningRun: nil, promoted: false, reason: "rejected: " + shift,
                    rejectedBy: Guardrail.labelShift.rawValue, accepted: nil,
                    labelOutliers: Array(checked.outliers.prefix(100)), labelOutlierCount: checked.outliers.count)
            }
            acceptedShift = checked.shift
            if !checked.outliers.isEmpty {
                newRows = Cleaner.csv(rows, without: Set(checked.outliers.map(\.row)))
            }
        }
        if let rows = newRows {
            let ingested = try catalog.ingest(
                csv: rows, dataset: request.dataset, source: "retrain by \(request.requestedBy)", append: true)
            dataset = ingested.manifest
            progress(.preparingData, 5, nil,
                     "dataset \(dataset.name) v\(dataset.version): \(ingested.cleaning.report.cleanRows) new clean rows, "
                        + "\(ingested.duplicatesOfEarlierRows) already present, \(ingested.cleaning.report.quarantinedRows) quarantined")
        }
        let everything = try catalog.table(of: dataset)
        var random = SeededRandom(seed: request.seed ^ 0x4E7_4A1)
        // The reference set: trusted rows no version trains on. The first retrain with enough new
        // rows sets it aside from them (rows no model has seen); it changes only by an operator's
        // `loupe reference refresh`.
        var reference = try catalog.reference(of: dataset.name)
        if reference == nil, let championManifest {
            let fresh = try freshRows(in: everything, of: dataset, since: championManifest)
            let size = min(request.referenceRows, fresh.count / 5)
            if fresh.count >= 2 * Self.minimumFreshRows, size >= Self.minimumFreshRows / 2 {
                let chosen = random.permutation(fresh.count).prefix(size).map { fresh[$0] }
                let manifest = try catalog.setAsideReference(
                    chosen, of: everything, from: dataset,
                    source: "set aside from \(dataset.name) v\(dataset.version) (rows production v\(championManifest.version) "
                        + "never saw) by a retrain")
                reference = (manifest, try catalog.table(of: manifest))
                progress(.preparingData, 8, nil, "set aside \(size) new rows as the reference set (\(manifest.name) v1)")
            }
        }
        let table = try catalog.trainingTable(everything, dataset: dataset.name)
        let fresh = try championManifest.map { try freshRows(in: table, of: dataset, since: $0) } ?? Array(0..<table.count)
        let comparison: RetrainOutcome.Comparison = championManifest == nil ? .noChampion
            : fresh.count >= Self.minimumFreshRows ? .freshRows : .refit
        // With new rows, a slice of them is held out and the rest train the challenger: new data
        // must be able to move the model (holding all of them out left it identical to production's).
        let pool = comparison == .freshRows ? fresh : Array(0..<table.count)
        let holdoutTarget = comparison == .freshRows
            ? max(Self.minimumFreshRows / 2, Int((Double(fresh.count) * request.freshHoldoutFraction).rounded()))
            : max(1, Int((Double(table.count) * request.holdoutFraction).rounded()))
        let holdoutRows = Array(random.permutation(pool.count).prefix(min(holdoutTarget, pool.count)).map { pool[$0] }).sorted()
        let inHoldout = Set(holdoutRows)
        let holdout = table.rows(holdoutRows)
        let trainingRows = (0..<table.count).filter { !inHoldout.contains($0) }
        var training = table.rows(trainingRows)
        // A market move in the new rows: history is brought to today's level before training (as
        // a price index re-levels past sales), so old and new rows agree and the trees learn
        // stones, not dates. The level is measured against production on the new training rows.
        var marketLevel: Double?
        if request.followMarketLevel, comparison == .freshRows, let production {
            let newTraining = table.rows(fresh.filter { !inHoldout.contains($0) })
            if let shift = Self.marketShift(of: production, on: newTraining) {
                let isNew = Set(fresh)
                let factor = exp(shift)
                let prices = zip(trainingRows, training.price).map { row, price in isNew.contains(row) ? price : price * factor }
                training = DiamondTable(columns: training.columns, price: prices, sourceRow: training.sourceRow)
                marketLevel = factor
                progress(.preparingData, 9, nil,
                         "the new rows sit at \(Self.format(factor))× production's prices: older rows re-levelled to match")
            }
        }

        let championConfiguration = championManifest.flatMap { Self.configuration(from: $0) }
        var configuration = request.configuration ?? championConfiguration ?? TrainingConfiguration()
        var tuningRunID: String?
        if var tuning = request.tuning {
            tuning.seed = request.seed
            tuning.threads = configuration.threads
            let id = "retrain-\(challengerTag())"
            progress(.tuning, 6, tuning.timeBudgetSeconds, "tuning on \(training.count) rows")
            let tuner = try Tuner(configuration: tuning, data: training, id: id)
            let searched = try tuner.tune(progress: { p in
                progress(.tuning, 6 + 28 * Double(p.trialsDone) / Double(max(p.trialBudget, 1)), p.secondsLeft,
                         "trial \(p.trialsDone)/\(p.trialBudget), best validation RMSE "
                            + (p.bestRMSE.map { "$" + Self.format($0) } ?? "-"))
            }, record: { try catalog.save($0) })
            guard searched.best != nil else { throw CatalogError("tuning run \(id) found no working parameters") }
            progress(.tuning, 34, nil, "polishing the best trial at a smaller learning rate")
            let run = try tuner.fitFinal(record: { try catalog.save($0) })
            guard let best = Tuner.bestConfiguration(of: run) else {
                throw CatalogError("tuning run \(id) found no working parameters")
            }
            configuration = best
            tuningRunID = id
        }
        configuration.seed = request.seed
        let trainStart = request.tuning == nil ? 10.0 : 36.0
        let trainShare = (comparison == .refit ? 0.5 : 1) * (80 - trainStart)
        progress(.training, trainStart, nil, "training the challenger on \(training.count) rows")
        let trained = try Trainer(configuration: configuration).train(training) { p in
            progress(.training, trainStart + trainShare * Double(p.round) / Double(p.totalRounds), nil,
                     "challenger: round \(p.round)/\(p.totalRounds)")
        }
        let challengerReport = EvaluationReport(model: trained.model, table: holdout)
        let challengerRMSE = challengerReport.metrics.rmse

        var championReport: EvaluationReport?
        var championRMSE: Double?
        var referenceRMSE: (challenger: Double, champion: Double)?
        if let championManifest {
            let champion: Ensemble
            if comparison == .refit {
                var refit = championConfiguration ?? TrainingConfiguration()
                refit.seed = request.seed
                refit.threads = configuration.threads
                progress(.training, trainStart + trainShare, nil, "refitting production's parameters on the same rows")
                champion = try Trainer(configuration: refit).train(training) { p in
                    progress(.training, trainStart + trainShare * (1 + Double(p.round) / Double(p.totalRounds)), nil,
                             "champion refit: round \(p.round)/\(p.totalRounds)")
                }.model
            } else {
                champion = try production ?? catalog.ensemble(of: championManifest)
            }
            progress(.evaluating, 82, nil, "measuring challenger and champion on \(holdout.count) holdout rows")
            championReport = EvaluationReport(model: champion, table: holdout)
            championRMSE = championReport?.metrics.rmse
            if let reference {
                referenceRMSE = (
                    challenger: EvaluationReport(model: trained.model, table: reference.table).metrics.rmse,
                    champion: EvaluationReport(model: champion, table: reference.table).metrics.rmse)
            }
        }

        progress(.registering, 90, nil, "registering the challenger")
        let challenger = try catalog.register(
            trained, name: request.model, dataset: dataset.reference, note: "retrain by \(request.requestedBy)")
        let championLabel = championManifest.map {
            "champion v\($0.version)" + (comparison == .refit ? " (its parameters refitted on the same rows)" : "")
        }
        var (promote, reason) = Self.decide(
            challenger: challengerRMSE, champion: championRMSE, championLabel: championLabel,
            margin: request.promotionMargin)
        if let acceptedShift {
            reason += "; label-shift accepted by \(request.requestedBy): "
                + acceptedShift.replacingOccurrences(of: "label-shift: ", with: "")
                    .components(separatedBy: "; the batch was not used").first!
        }
        if let marketLevel {
            reason += "; the new rows' market level (×\(Self.format(marketLevel)) production's prices) applied to older rows"
        }
        var rejectedBy: Guardrail?
        if promote, championManifest != nil,
            let (guardrail, why) = request.quality.violation(challenger: challengerReport, champion: championReport)
                ?? request.quality.referenceViolation(referenceRMSE, rows: reference?.table.count ?? 0)
        {
            if request.accept.contains(guardrail) {
                reason += "; \(guardrail.rawValue) accepted by \(request.requestedBy): \(why)"
            } else {
                promote = false
                rejectedBy = guardrail
                reason = "rejected: \(why); " + reason + " (accept it with --accept \(guardrail.rawValue))"
            }
        }
        if promote {
            progress(.swapping, 95, nil, "promoting v\(challenger.version)")
            _ = try catalog.promote(name: request.model, version: challenger.version, reason: reason)
        }
        let outcome = RetrainOutcome(
            modelName: request.model, datasetVersion: dataset.version, challengerVersion: challenger.version,
            championVersion: championManifest?.version, challengerRMSE: challengerRMSE, championRMSE: championRMSE,
            holdoutRows: holdout.count, comparison: comparison, tuningRun: tuningRunID, promoted: promote,
            reason: reason, rejectedBy: rejectedBy?.rawValue,
            accepted: request.accept.isEmpty ? nil : request.accept.map(\.rawValue).sorted(),
            labelOutliers: screen.map { Array($0.outliers.prefix(100)) },
            labelOutlierCount: screen?.outliers.count,
            newTrainingRows: comparison == .freshRows ? fresh.count - holdout.count : nil,
            marketLevel: marketLevel,
            referenceVersion: reference?.manifest.version, referenceRows: reference?.table.count,
            challengerReferenceRMSE: referenceRMSE?.challenger, championReferenceRMSE: referenceRMSE?.champion)
        // Kept for the model's report page (champion vs challenger): saved before `onPromoted`,
        // which may render and store that page.
        try? catalog.save(outcome)
        if promote { onPromoted(challenger, trained.model) }
        return outcome
    }

    private func challengerTag() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"
        return formatter.string(from: Date())
    }

    /// Fewest never-seen rows for a fresh-rows holdout; with fewer, the champion is refitted.
    static let minimumFreshRows = 200

    /// Indices of rows in `table` that the model's training dataset version did not contain.
    func freshRows(in table: DiamondTable, of dataset: DatasetManifest, since model: ModelManifest) throws -> [Int] {
        if model.dataset == dataset.reference { return [] }
        let seen = try catalog.table(of: try catalog.store.dataset(name: model.dataset.name, version: model.dataset.version))
        var keys = Set<RowValues>()
        keys.reserveCapacity(seen.count)
        for row in 0..<seen.count { keys.insert(RowValues(seen, row)) }
        return (0..<table.count).filter { !keys.contains(RowValues(table, $0)) }
    }

    /// How far (in log price) the new rows sit from `model` (production) as a whole, when that is
    /// a real move: their median residual, used only when at least 1% and beyond twice its
    /// standard error (from the median absolute deviation). Trees learn a market move only where
    /// new rows outnumber old ones in a leaf, so a batch of new prices would otherwise barely move
    /// the model. Nil for a model on the price scale, too few rows, or no real move.
    static func marketShift(of model: Ensemble, on rows: DiamondTable) -> Double? {
        guard model.target == .logPrice, rows.count >= minimumFreshRows else { return nil }
        let raw = model.rawScores(columns: rows.columns)
        let residuals = zip(rows.price, raw).map { log($0) - $1 }.sorted()
        let median = residuals[residuals.count / 2]
        let deviations = residuals.map { abs($0 - median) }.sorted()
        let sigma = 1.4826 * deviations[deviations.count / 2]
        let standardError = 1.2533 * sigma / Double(rows.count).squareRoot()
        guard abs(median) >= log(1.01), abs(median) > 2 * standardError else { return nil }
        return median
    }

    /// The promotion rule, on holdout RMSE in dollars.
    static func decide(challenger: Double, champion: Double?, championLabel: String?, margin: Double) -> (Bool, String) {
        guard let champion, let championLabel else {
            return (true, "no production model yet")
        }
        let needed = champion * (1 - margin)
        let text = "holdout RMSE $\(format(challenger)) vs \(championLabel) $\(format(champion))"
        if challenger <= needed {
            return (true, text + ": better by at least \(format(margin * 100))%")
        }
        return (false, text + ": not better by \(format(margin * 100))%, champion kept")
    }

    /// The training configuration a model was made with, from its manifest.
    public static func configuration(from manifest: ModelManifest) -> TrainingConfiguration? {
        guard let data = try? JSONEncoder().encode(manifest.hyperparameters) else { return nil }
        return try? JSONDecoder().decode(TrainingConfiguration.self, from: data)
    }

    static func format(_ v: Double) -> String { String(format: "%.2f", v) }
}
