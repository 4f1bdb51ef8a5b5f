import ArtifactStore
import Catalog
import DataCleaning
import Foundation
import HyperTuning
import LoupeTestKit
import Synchronization
import Testing
import TreeModel
import TreeTraining
@testable import Retraining

@Suite struct RetrainingTests {
    static let good = TrainingConfiguration(
        rounds: 40, learningRate: 0.2, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
        calibrationFraction: 0.15, threads: 1)
    static let poor = TrainingConfiguration(
        rounds: 2, learningRate: 0.05, numLeaves: 2, minDataInLeaf: 5, earlyStoppingRounds: 0,
        calibrationFraction: 0.15, threads: 1)

    static func csv(rows: Int, seed: Int = 0) -> [UInt8] {
        Array(SyntheticDiamonds.csv(rows: rows, seed: seed, mixedCuts: false).utf8)
    }

    func catalog() throws -> (Catalog, URL) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-retrain-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Self.csv(rows: 700), dataset: "diamonds", source: "test")
        return (catalog, url)
    }

    @Test func championChallengerGate() throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        let swapped = Mutex<[Int]>([])
        let pipeline = RetrainPipeline(catalog: catalog) { manifest, _ in swapped.withLock { $0.append(manifest.version) } }

        let first = try pipeline.run(RetrainRequest(configuration: Self.good))
        #expect(first.promoted)
        #expect(first.reason == "no production model yet")
        #expect(first.championVersion == nil)

        let worse = try pipeline.run(RetrainRequest(configuration: Self.poor))
        #expect(!worse.promoted)
        #expect(worse.challengerVersion == 2)
        #expect(worse.championVersion == 1)
        let championRMSE = try #require(worse.championRMSE)
        #expect(try #require(worse.challengerRMSE) > championRMSE)
        #expect(worse.reason.contains("champion kept"))
        #expect(worse.comparison == .refit)  // no new rows: production's parameters refitted
        #expect(try catalog.store.aliases(name: "diamonds").production == 1)

        // Reusing production's parameters (none given) trains with the good configuration again.
        let again = try pipeline.run(RetrainRequest(promotionMargin: 0))
        #expect(again.challengerVersion == 3)
        #expect(swapped.withLock { $0 } == (again.promoted ? [1, 3] : [1]))
        let manifest3 = try catalog.store.model(name: "diamonds", version: 3)
        #expect(RetrainPipeline.configuration(from: manifest3)?.numLeaves == 7)
    }

    /// A batch of new rows with every price multiplied by `factor`, and rows `typos` (0-based)
    /// multiplied by 10 on top.
    static func batch(rows: Int, seed: Int, factor: Double = 1, typos: Set<Int> = []) -> [UInt8] {
        var lines = SyntheticDiamonds.csv(rows: rows, seed: seed, mixedCuts: false).split(separator: "\n").map(String.init)
        for i in 1..<lines.count {
            var fields = lines[i].split(separator: ",").map(String.init)
            let price = Double(fields[6])! * factor * (typos.contains(i - 1) ? 10 : 1)
            fields[6] = String(Int(price.rounded()))
            lines[i] = fields.joined(separator: ",")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A store whose production model trained on 1,500 rows.
    func storeWithProduction() throws -> (Catalog, URL, RetrainPipeline) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-retrain-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Self.csv(rows: 1500), dataset: "diamonds", source: "test")
        let pipeline = RetrainPipeline(catalog: catalog)
        #expect(try pipeline.run(RetrainRequest(configuration: Self.good)).promoted)
        return (catalog, url, pipeline)
    }

    @Test func aSmallBatchOfNewRowsTrainsTheChallenger() throws {
        let (catalog, url, pipeline) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url) }
        // 300 new stones: the holdout was 10% of the whole dataset drawn from them (180), so few trained.
        let outcome = try pipeline.run(RetrainRequest(
            newRowsCSV: Self.batch(rows: 300, seed: 9), configuration: Self.good, promotionMargin: 0.5))
        #expect(outcome.comparison == .freshRows)
        #expect(outcome.holdoutRows == 100, "a quarter of the new rows, at least 100")
        #expect(outcome.newTrainingRows == 200)
        let challenger = try catalog.store.model(name: "diamonds", version: try #require(outcome.challengerVersion))
        #expect(challenger.metrics["train_rows"].map(Int.init) ?? 0 > 1500 * 80 / 100, "old rows and new ones")
        #expect(outcome.labelOutlierCount == 0)
    }

    @Test func aBatchPricedFarFromProductionIsRefusedUnlessAccepted() throws {
        let (catalog, url, pipeline) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url) }
        let datasetBefore = try catalog.latestDataset().version
        let tripled = Self.batch(rows: 400, seed: 11, factor: 3)
        let refused = try pipeline.run(RetrainRequest(newRowsCSV: tripled, configuration: Self.good))
        #expect(!refused.promoted && refused.rejectedBy == "label-shift" && refused.challengerVersion == nil)
        #expect(refused.reason.contains("label-shift") && refused.reason.contains("--accept label-shift"), "\(refused.reason)")
        #expect(try catalog.latestDataset().version == datasetBefore, "the batch never entered the dataset")
        #expect(try catalog.store.aliases(name: "diamonds").production == 1)

        // The operator's explicit override goes on, and says so.
        let accepted = try pipeline.run(RetrainRequest(newRowsCSV: tripled, configuration: Self.good, accept: [.labelShift]))
        // (Later guardrails still judge the challenger: the ×3 holdout may fail its coverage.)
        #expect(accepted.rejectedBy != "label-shift" && accepted.challengerVersion != nil, "\(accepted.reason)")
        #expect(accepted.accepted == ["label-shift"])
        #expect(try catalog.latestDataset().version == datasetBefore + 1)
    }

    @Test func labelOutliersAreSetAsideAndTheRestUsed() throws {
        let (catalog, url, pipeline) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url) }
        let typos: Set<Int> = Set(stride(from: 3, to: 400, by: 20))  // 5%: a price ×10
        let outcome = try pipeline.run(RetrainRequest(
            newRowsCSV: Self.batch(rows: 400, seed: 13, typos: typos), configuration: Self.good, promotionMargin: 0.5))
        #expect(outcome.rejectedBy == nil)
        #expect(outcome.labelOutlierCount == typos.count)
        #expect(Set(outcome.labelOutliers?.map { $0.row - 1 } ?? []) == typos)
        #expect(outcome.labelOutliers?.first?.reason.hasPrefix("label_outlier: price $") == true)
        let dataset = try catalog.latestDataset()
        #expect(dataset.counts.rowsIn == 1500 + 400 - typos.count, "only the rows that passed were ingested")
    }

    @Test func aReferenceSetIsSetAsideFromNewRowsAndNeverTrainedOn() throws {
        let (catalog, url, pipeline) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url) }
        let first = try pipeline.run(RetrainRequest(
            newRowsCSV: Self.batch(rows: 600, seed: 17), configuration: Self.good, promotionMargin: 0.5))
        #expect(first.referenceVersion == 1 && first.referenceRows == 120, "a fifth of the 600 new rows")
        #expect(first.challengerReferenceRMSE != nil && first.championReferenceRMSE != nil)
        let reference = try #require(try catalog.reference(of: "diamonds"))
        #expect(reference.table.count == 120 && reference.manifest.name == "diamonds-reference")
        // No version trains on it: the training table leaves every reference row out.
        let everything = try catalog.table(of: try catalog.latestDataset())
        #expect(try catalog.trainingTable(everything, dataset: "diamonds").count == everything.count - 120)
        #expect(first.newTrainingRows == 480 - first.holdoutRows)

        // The next retrain measures on the same reference set; it is not set aside again.
        let second = try pipeline.run(RetrainRequest(
            newRowsCSV: Self.batch(rows: 600, seed: 19), configuration: Self.good, promotionMargin: 0.5))
        #expect(second.referenceVersion == 1 && second.referenceRows == 120)
        #expect(try catalog.store.latestDataset(name: "diamonds-reference")?.version == 1)
    }

    @Test func aMarketMoveInTheNewRowsMovesThePrices() throws {
        let (catalog, url, pipeline) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url) }
        let batch = Self.batch(rows: 800, seed: 21, factor: 1.1)  // every new price 10% higher
        let production = try #require(try catalog.store.model(name: "diamonds", alias: .production))
        let champion = try catalog.ensemble(of: production)
        let outcome = try pipeline.run(RetrainRequest(newRowsCSV: batch, configuration: Self.good, promotionMargin: 0))
        let level = try #require(outcome.marketLevel, "\(outcome.reason)")
        #expect(level > 1.05 && level < 1.15, "\(level)")
        #expect(outcome.reason.contains("market level"))
        // The challenger prices those stones most of the move higher than production did.
        let version = try #require(outcome.challengerVersion)
        let challenger = try catalog.ensemble(of: try catalog.store.model(name: "diamonds", version: version))
        let stones = try Cleaner.clean(csv: batch).clean
        let before = champion.rawScores(columns: stones.columns)
        let after = challenger.rawScores(columns: stones.columns)
        let ratios = zip(after, before).map { exp($0 - $1) }.sorted()
        #expect(ratios[ratios.count / 2] >= 1.05, "median move \(ratios[ratios.count / 2])")

        // Genuine new rows at the old level apply none.
        let (_, url2, steady) = try storeWithProduction()
        defer { try? FileManager.default.removeItem(at: url2) }
        let same = try steady.run(RetrainRequest(newRowsCSV: Self.batch(rows: 800, seed: 23), configuration: Self.good))
        #expect(same.marketLevel == nil, "\(same.reason)")
    }

    @Test func newRowsBecomeADatasetVersion() throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        let pipeline = RetrainPipeline(catalog: catalog)
        let first = try pipeline.run(RetrainRequest(configuration: Self.good))
        #expect(first.comparison == .noChampion)
        let outcome = try pipeline.run(RetrainRequest(newRowsCSV: Self.csv(rows: 400, seed: 1), configuration: Self.good))
        #expect(outcome.datasetVersion == 2)
        #expect(outcome.comparison == .freshRows)  // the holdout is drawn from rows production never saw
        #expect(outcome.holdoutRows > 0)
        let v2 = try catalog.store.dataset(name: "diamonds", version: 2)
        #expect(v2.parent == 1)
        #expect(v2.counts.clean > 700)
    }

    @Test func tuningChoosesTheChallengersParameters() throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        let budget = TuningConfiguration(
            maxTrials: 4, timeBudgetSeconds: nil, startupTrials: 4, parallelTrials: 2, threads: 2, maxRounds: 60,
            earlyStoppingRounds: 10, rungMinRounds: 20)
        let stages = Mutex<[JobStage]>([])
        let outcome = try RetrainPipeline(catalog: catalog).run(RetrainRequest(tuning: budget)) { stage, _, _, _ in
            stages.withLock { $0.append(stage) }
        }
        let id = try #require(outcome.tuningRun)
        #expect(try catalog.tuningRun(id).trials.count == 4)
        #expect(stages.withLock { $0.contains(.tuning) })
        let manifest = try catalog.store.model(name: "diamonds", version: try #require(outcome.challengerVersion))
        let best = try #require(Tuner.bestConfiguration(of: try catalog.tuningRun(id)))
        #expect(RetrainPipeline.configuration(from: manifest)?.numLeaves == best.numLeaves)
    }

    @Test func promotionRule() {
        #expect(RetrainPipeline.decide(challenger: 100, champion: nil, championLabel: nil, margin: 0.01).0)
        #expect(RetrainPipeline.decide(challenger: 98.9, champion: 100, championLabel: "v1", margin: 0.01).0)
        #expect(!RetrainPipeline.decide(challenger: 99.5, champion: 100, championLabel: "v1", margin: 0.01).0)
        #expect(RetrainPipeline.decide(challenger: 100, champion: 100, championLabel: "v1", margin: 0).0)
    }

    @Test func jobsReportStagesAndFailures() async throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        let jobs = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        let ok = jobs.start(RetrainRequest(configuration: Self.good))
        let bad = jobs.start(RetrainRequest(dataset: "missing", configuration: Self.good))
        #expect(ok.hasPrefix("job-") && bad.hasPrefix("job-") && ok != bad)
        let done = try #require(await jobs.wait(ok))
        #expect(done.stage == .done)
        #expect(done.percent == 100)
        #expect(done.outcome?.promoted == true)
        let failed = try #require(await jobs.wait(bad))
        #expect(failed.stage == .failed)
        #expect(failed.error?.contains("missing") == true)
        #expect(jobs.status("job-99") == nil)
        #expect(Set(jobs.all().map(\.id)) == [ok, bad])

        // Durable: another process on the store (here a new manager) finds both, as they ended.
        let later = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        #expect(later.status(ok)?.outcome?.promoted == true && later.status(ok)?.requestedBy == "loupe")
        #expect(later.status(bad)?.stage == .failed)
        #expect(Set(JobManager.all(in: catalog).map(\.id)) == [ok, bad])
    }

    @Test func aJobLeftRunningByAStoppedProcessIsMarkedInterrupted() throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        // What a process killed mid-training leaves in the store.
        let running = JobStatus(
            id: "job-20261207t120000-abcdef", model: "diamonds", requestedBy: "admin", stage: .training, percent: 40,
            etaSeconds: 30, message: "challenger: round 12/40", started: Date())
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try catalog.store.putRecord(kind: JobManager.recordKind, id: running.id, json: Array(try encoder.encode(running)))
        let jobs = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        let status = try #require(jobs.status(running.id))
        #expect(status.stage == .failed && status.finished != nil)
        #expect(status.error == "interrupted: the process running it stopped while it was training")
        #expect(JobManager.read(running.id, in: catalog)?.stage == .failed, "recorded, not only in memory")

        // A job whose process is still running is left alone; one whose process is gone is not.
        var alive = running
        alive.id = "job-20261207t120001-alive0"
        alive.owner = JobManager.owner
        var gone = running
        gone.id = "job-20261207t120002-gone00"
        gone.owner = "\(ProcessInfo.processInfo.hostName):\(Int32.max)"
        for job in [alive, gone] {
            try catalog.store.putRecord(kind: JobManager.recordKind, id: job.id, json: Array(try encoder.encode(job)))
        }
        _ = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        #expect(JobManager.read(alive.id, in: catalog)?.stage == .training)
        #expect(JobManager.read(gone.id, in: catalog)?.stage == .failed)
    }

    @Test func badArgumentsFailClearly() throws {
        let (catalog, url) = try catalog()
        defer { try? FileManager.default.removeItem(at: url) }
        let pipeline = RetrainPipeline(catalog: catalog)
        #expect { try pipeline.run(RetrainRequest(promotionMargin: 1.5)) } throws: { "\($0)".contains("margin") }
        #expect { try pipeline.run(RetrainRequest(holdoutFraction: 0)) } throws: { "\($0)".contains("holdout") }
    }
}

/// The guardrails a challenger that wins overall must still pass.
@Suite struct QualityGuardrailTests {
    /// 1,000 holdout rows priced 1…1000 dollars; `error(price)` is the model's relative error and
    /// `covered` whether each row falls inside its range.
    static func report(error: (Double) -> Double, covered: (Int) -> Bool = { _ in true }) -> EvaluationReport {
        let actual = (1...1000).map(Double.init)
        let estimates = actual.enumerated().map { i, price in
            let p = price * (1 + error(price))
            return covered(i) ? PriceEstimate(price: p, low: price * 0.5, high: price * 1.5, level: 0.9)
                : PriceEstimate(price: p, low: price * 2, high: price * 3, level: 0.9)
        }
        return EvaluationReport(actual: actual, estimates: estimates, level: 0.9, calibrated: true)
    }

    static func ninetyPercent(_ row: Int) -> Bool { row % 10 != 0 }

    @Test func aChallengerMuchWorseInOneDecileIsStopped() throws {
        let champion = Self.report(error: { _ in 0.05 }, covered: Self.ninetyPercent)
        // Better everywhere but the top decile, where its error is doubled.
        let challenger = Self.report(error: { $0 > 900 ? 0.10 : 0.01 }, covered: Self.ninetyPercent)
        let (guardrail, why) = try #require(QualityPolicy().violation(challenger: challenger, champion: champion))
        #expect(guardrail == .decileRegression)
        #expect(why.contains("price decile 10") && why.contains("+100.0%"), "\(why)")
        #expect(QualityPolicy(decileRegressionBudget: 1.5).violation(challenger: challenger, champion: champion) == nil)
    }

    @Test func aChallengerWorseOnTheReferenceSetIsStopped() throws {
        let policy = QualityPolicy()
        #expect(policy.referenceViolation((challenger: 104, champion: 100), rows: 500) == nil)
        let (guardrail, why) = try #require(policy.referenceViolation((challenger: 110, champion: 100), rows: 500))
        #expect(guardrail == .referenceRegression && why.contains("500 rows of the reference set") && why.contains("+10.0%"))
        #expect(policy.referenceViolation(nil, rows: 0) == nil, "no reference set yet")
    }

    @Test func rangesThatMissTheirLevelAreStopped() throws {
        let champion = Self.report(error: { _ in 0.05 }, covered: Self.ninetyPercent)
        let narrow = Self.report(error: { _ in 0.04 }, covered: { $0 % 10 >= 3 })  // 70% covered
        let (guardrail, why) = try #require(QualityPolicy().violation(challenger: narrow, champion: champion))
        #expect(guardrail == .coverage && why.contains("covered 70.0%"), "\(why)")
        let fine = Self.report(error: { _ in 0.04 }, covered: Self.ninetyPercent)
        #expect(QualityPolicy().violation(challenger: fine, champion: champion) == nil)
    }
}
