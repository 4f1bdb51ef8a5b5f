import DataCleaning
import Dispatch
import Foundation
import LoupeUtilities
import Synchronization
import TreeModel
import TreeTraining

/// Searches the trainer's parameters for the lowest validation RMSE (in dollars).
///
/// - Proposals: `startupTrials` uniform random points, then multivariate TPE.
/// - Trials run in batches of `parallelTrials`, each trainer with its share of the threads.
///   A batch's proposals and pruning decisions depend only on earlier batches, so a run is
///   deterministic for a seed and a trial budget (a time budget decides how many batches run).
/// - Successive halving on rounds (ASHA): at rungs r, rη, rη², … a trial continues only if
///   its validation loss is among the best 1/η of the trials that reached that rung before.
///   Rungs count rounds at learning rate 0.1 (see `rungLearningRate`).
/// - Early stopping inside every trial; holdout or k-fold validation.
/// - After every batch the run is handed to `record` (the CLI stores it), so it can be
///   inspected live and resumed.
public final class Tuner {
    public let configuration: TuningConfiguration
    private let data: DiamondTable
    private var run: TuningRun
    private let clock = ContinuousClock()

    /// Prepares a run over `data`. `resume` continues an earlier run (same data expected):
    /// its search settings are kept, the budgets and threads come from `configuration`, and
    /// the trial budget counts the trials it already has.
    public init(configuration: TuningConfiguration, data: DiamondTable, id: String, resume: TuningRun? = nil) throws {
        try configuration.validate()
        guard data.count >= 100 else { throw TuningError("\(data.count) rows are too few to tune on (need 100)") }
        self.configuration = resume.map {
            var kept = $0.configuration
            kept.maxTrials = configuration.maxTrials
            kept.timeBudgetSeconds = configuration.timeBudgetSeconds
            kept.threads = configuration.threads
            kept.parallelTrials = configuration.parallelTrials
            return kept
        } ?? configuration
        self.data = data
        run = resume ?? TuningRun(id: id, configuration: configuration, trials: [], started: Date())
        run.configuration = self.configuration
        run.finished = nil
        run.stopReason = nil
        run.final = nil
    }

    /// Runs trials until a budget is spent; returns the run with every trial.
    public func tune(
        progress: (TuningProgress) -> Void = { _ in }, record: (TuningRun) throws -> Void = { _ in }
    ) throws -> TuningRun {
        let c = configuration
        let start = clock.now
        let cores = c.threads > 0 ? c.threads : ProcessInfo.processInfo.activeProcessorCount
        let parallel = max(1, min(c.parallelTrials > 0 ? c.parallelTrials : cores, cores))
        let threadsPerTrial = max(1, cores / parallel)
        let splits = makeSplits()
        let deadline = c.timeBudgetSeconds.map { start + .milliseconds(Int64($0 * 1000)) }
        let lag = Self.informationLag(parallel: parallel)

        // A trial starts as soon as a worker is free and every trial it may learn from (numbers
        // below n − lag) has finished: no worker waits for a batch's slowest trial, and what a
        // trial learns from depends only on its number, so the run stays deterministic.
        let finished = FinishedTrials()
        let done = DispatchSemaphore(value: 0)
        var next = run.trials.count
        var running = 0
        var units: [Int: [Double]] = Dictionary(uniqueKeysWithValues: run.trials.map { ($0.number, $0.unit) })
        var stoppedByTime = false
        while true {
            while running < parallel, next < c.maxTrials, run.trials.count >= next - lag {
                if let deadline, clock.now >= deadline {
                    stoppedByTime = true
                    break
                }
                let number = next
                let known = Array(run.trials.prefix(max(0, number - lag)))
                let unit = propose(number, known: known, pending: (max(0, number - lag)..<number).compactMap { units[$0] })
                units[number] = unit
                let rungs = Self.rungValues(known)
                let trainer = Self.trainerConfiguration(c, unit: unit, number: number, threads: threadsPerTrial)
                DispatchQueue.global(qos: .userInitiated).async {
                    let trial = Self.runTrial(
                        c, trainer: trainer, number: number, unit: unit, splits: splits, rungs: rungs, deadline: deadline)
                    finished.store(trial)
                    done.signal()
                }
                next += 1
                running += 1
            }
            if running == 0 { break }
            done.wait()
            running -= 1
            // Trials join the run in number order, so a saved run is always a prefix.
            var appended = false
            while let trial = finished.take(run.trials.count) {
                run.trials.append(trial)
                appended = true
                let elapsed = (clock.now - start).seconds
                progress(TuningProgress(
                    trialsDone: run.trials.count, trialBudget: c.maxTrials, bestRMSE: run.best?.rmse,
                    elapsedSeconds: elapsed, secondsLeft: c.timeBudgetSeconds.map { max(0, $0 - elapsed) },
                    lastTrial: trial))
            }
            if appended { try record(run) }
        }
        if stoppedByTime || (run.trials.count < c.maxTrials && deadline.map { clock.now >= $0 } == true) {
            run.stopReason = "time budget of \(Int(c.timeBudgetSeconds!)) s spent"
        }
        if run.stopReason == nil { run.stopReason = "trial budget of \(c.maxTrials) reached" }
        run.finished = Date()
        try record(run)
        return run
    }

    /// The best trial's parameters on top of the base configuration, ready to train the final
    /// model: with the run's final fit (`fitFinal`), its learning rate and a fixed number of
    /// rounds on every row but the calibration slice; for a run saved without one, early
    /// stopping on a validation slice as `loupe train` does.
    public static func bestConfiguration(of run: TuningRun) -> TrainingConfiguration? {
        guard let best = run.best else { return nil }
        var c = run.configuration.space.configuration(at: best.unit, base: run.configuration.base)
        if let final = run.final {
            c.learningRate = final.learningRate
            c.rounds = final.rounds
            c.earlyStoppingRounds = 0
        } else {
            c.rounds = run.configuration.maxRounds
            c.earlyStoppingRounds = run.configuration.earlyStoppingRounds
        }
        return c
    }

    /// A polishing trial divides the best learning rate by this (down to the search space's
    /// smallest) and may train this many times the rounds.
    public static let polishFactor = 4

    /// The polishing trial's rate: 1/`polishFactor` of the searched one, but not below the
    /// search space's smallest rate (rounds grow as the rate shrinks).
    public static func polishLearningRate(_ searched: Double, _ c: TuningConfiguration) -> Double {
        let floor = c.space.dimensions.first { $0.parameter == .learningRate }.map { $0.value(at: 0) } ?? 0.01
        return min(searched, max(searched / Double(polishFactor), floor))
    }

    /// Decides how the final model is fitted, records it in the run (`final`) and returns the run.
    ///
    /// - When the search pruned its best trial (it looked weak at a rung yet ended best), the
    ///   trial stopped while perhaps still improving and its round count says little: it is
    ///   trained on to early stopping on the same split first.
    /// - The search compares trials at learning rates that make them quick; boosting the best
    ///   trees with a smaller rate and proportionally more rounds often generalises better, so
    ///   one polishing trial retrains the best parameters at 1/`polishFactor` of the rate (not
    ///   below the space's smallest) on the same split, kept only if it validates better.
    /// - The final model then trains on every row but the calibration slice: the validation
    ///   rows have done their job (choosing parameters and the round count), and holding out
    ///   another slice for early stopping would waste a sixth of the data. Its round count is
    ///   the best round scaled by how many more rows it trains on than a trial did, as LightGBM
    ///   users refit with `best_iteration / (1 - validation share)`.
    public func fitFinal(record: (TuningRun) throws -> Void = { _ in }) throws -> TuningRun {
        guard run.searchBest?.rmse != nil else { throw TuningError("no trial succeeded") }
        let c = configuration
        let started = clock.now
        let cores = c.threads > 0 ? c.threads : ProcessInfo.processInfo.activeProcessorCount
        let (best, finalistRMSE) = chooseFinalist(threads: cores)
        let bestRMSE = best.rmse!
        let trainer = Self.trainerConfiguration(c, unit: best.unit, number: best.number, threads: cores)
        let searched = trainer.learningRate
        let splits = makeSplits()
        let polishRate = Self.polishLearningRate(searched, c)
        let finishes = best.state == .pruned
        let polishes = polishRate < searched
        // Finishing and polishing are independent trainings: when both run they run at once,
        // each with half the threads (one trainer gains less from a second thread than a
        // second trainer does).
        let threads = finishes && polishes ? max(1, cores / 2) : cores
        @Sendable func train(rate: Double, patience: Int) -> TrialRecord {
            var t = trainer
            t.learningRate = rate
            t.rounds = c.maxRounds * max(1, Int((searched / rate).rounded(.up)))
            t.earlyStoppingRounds = patience
            t.threads = threads
            return Self.runTrial(
                c, trainer: t, number: best.number, unit: best.unit, splits: splits, rungs: [:], deadline: nil)
        }
        let results = FinishedTrials()
        var jobs: [@Sendable () -> Void] = []
        // Trial numbers 0 and 1 below only key the two results.
        if finishes { jobs.append { results.store(Self.renumbered(train(rate: searched, patience: c.earlyStoppingRounds), 0)) } }
        // A flatter learning curve needs more patience before it is called finished.
        if polishes { jobs.append { results.store(Self.renumbered(train(rate: polishRate, patience: c.earlyStoppingRounds * 2), 1)) } }
        Self.runAtOnce(jobs)

        var final = FinalFit(
            trial: best.number, finalistRMSE: finalistRMSE.isEmpty ? nil : finalistRMSE, searchedLearningRate: searched, learningRate: searched, validationRMSE: bestRMSE, finishedRMSE: nil,
            polishedRMSE: nil, bestRound: best.bestRound, rounds: 0, seconds: 0)
        if let finished = results.take(0) {
            final.finishedRMSE = finished.rmse
            if let rmse = finished.rmse {
                final.validationRMSE = rmse
                final.bestRound = finished.bestRound
            }
        }
        if let polished = results.take(1) {
            final.polishedRMSE = polished.rmse
            if let rmse = polished.rmse, rmse < final.validationRMSE {
                final.learningRate = polishRate
                final.validationRMSE = rmse
                final.bestRound = polished.bestRound
            }
        }
        let trialTrainShare = c.folds == 1 ? 1 - c.validationFraction : 1 - 1 / Double(c.folds)
        let finalTrainShare = 1 - c.base.calibrationFraction
        final.rounds = max(1, Int((Double(final.bestRound) * finalTrainShare / trialTrainShare).rounded()))
        final.seconds = (clock.now - started).seconds
        run.final = final
        try record(run)
        return run
    }

    /// The trial to fit: with `finalists` ≥ 2 (and one holdout split), the best few trials
    /// are trained again, at once, on a second holdout split (validation rows disjoint from the
    /// search's), and the one with the lowest mean RMSE over both splits wins. One split's
    /// RMSE picks the trial that suits those rows best as much as the best parameters: the
    /// seed alone moved the tuned model's test RMSE by 2% (docs/TRAINING.md, "Tuning").
    private func chooseFinalist(threads cores: Int) -> (TrialRecord, [Int: Double]) {
        let c = configuration
        let ranked = run.trials.filter { $0.rmse != nil }.sorted { $0.rmse! < $1.rmse! }
        let finalists = Array(ranked.prefix(c.finalists))
        guard c.folds == 1, finalists.count >= 2 else { return (ranked[0], [:]) }
        let second = [makeSecondSplit()]
        let results = FinishedTrials()
        let threads = max(1, cores / finalists.count)
        Self.runAtOnce(finalists.map { finalist in
            let trainer = Self.trainerConfiguration(c, unit: finalist.unit, number: finalist.number, threads: threads)
            return {
                results.store(Self.runTrial(
                    c, trainer: trainer, number: finalist.number, unit: finalist.unit, splits: second, rungs: [:],
                    deadline: nil))
            }
        })
        var rescored: [Int: Double] = [:]
        for finalist in finalists {
            if let rmse = results.take(finalist.number)?.rmse { rescored[finalist.number] = rmse }
        }
        let chosen = finalists.min { a, b in
            let meanA = rescored[a.number].map { (a.rmse! + $0) / 2 } ?? .infinity
            let meanB = rescored[b.number].map { (b.rmse! + $0) / 2 } ?? .infinity
            return meanA < meanB
        }!
        return (rescored[chosen.number] == nil ? ranked[0] : chosen, rescored)
    }

    /// Runs `jobs` at once, each on a thread of its own, and returns when all are done. Own
    /// threads rather than Dispatch's pool (one per core): three jobs on two cores share them
    /// instead of the third running alone after the others.
    private static func runAtOnce(_ jobs: [@Sendable () -> Void]) {
        if jobs.count == 1 { return jobs[0]() }
        let done = DispatchSemaphore(value: 0)
        for job in jobs {
            Thread {
                job()
                done.signal()
            }.start()
        }
        for _ in jobs { done.wait() }
    }

    // MARK: - Proposals

    /// How many of the trials just before it a trial does not learn from (they count as
    /// pending proposals instead): with `parallel` workers, the ones that may still be running.
    /// One more than the workers, so a worker rarely waits for a long trial to finish.
    static func informationLag(parallel: Int) -> Int { parallel == 1 ? 0 : parallel + 1 }

    /// The proposal of trial `number`, from the trials it may learn from (`known`) and the
    /// proposals still being measured (`pending`).
    private func propose(_ number: Int, known: [TrialRecord], pending: [[Double]]) -> [Double] {
        let d = configuration.space.dimensions.count
        let history = known.compactMap { t in t.rmse.map { (point: t.unit, loss: $0) } }
        // One generator per trial number: a resumed run proposes what the first would have.
        var random = SeededRandom(seed: configuration.seed &+ UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
        return number < configuration.startupTrials || history.count < 2
            ? ParzenSampler.uniform(dimensions: d, random: &random)
            : ParzenSampler().propose(history: history, pending: pending, dimensions: d, random: &random)
    }

    // MARK: - Trials

    /// Trials that have finished but not yet joined the run (they join in number order).
    private final class FinishedTrials: Sendable {
        private let trials = Mutex<[Int: TrialRecord]>([:])
        func store(_ trial: TrialRecord) { trials.withLock { $0[trial.number] = trial } }
        func take(_ number: Int) -> TrialRecord? { trials.withLock { $0.removeValue(forKey: number) } }
    }

    private struct Split: Sendable {
        var train: DiamondTable
        var validation: DiamondTable
    }

    private func makeSplits() -> [Split] {
        var random = SeededRandom(seed: configuration.seed ^ 0x7E57)
        let order = random.permutation(data.count)
        let k = configuration.folds
        if k == 1 {
            let n = Int((Double(data.count) * configuration.validationFraction).rounded())
            return [Split(train: data.rows(order[n...].sorted()), validation: data.rows(order[..<n].sorted()))]
        }
        return (0..<k).map { fold in
            let validation = order.indices.filter { $0 % k == fold }.map { order[$0] }.sorted()
            let train = order.indices.filter { $0 % k != fold }.map { order[$0] }.sorted()
            return Split(train: data.rows(train), validation: data.rows(validation))
        }
    }

    private static func renumbered(_ trial: TrialRecord, _ number: Int) -> TrialRecord {
        var trial = trial
        trial.number = number
        return trial
    }

    /// A second holdout split for re-scoring finalists: the next `validationFraction` of the
    /// search split's permutation validates (disjoint from the search's validation rows).
    private func makeSecondSplit() -> Split {
        var random = SeededRandom(seed: configuration.seed ^ 0x7E57)
        let order = random.permutation(data.count)
        let n = Int((Double(data.count) * configuration.validationFraction).rounded())
        let validation = Array(order[n..<(2 * n)]).sorted()
        let train = (Array(order[..<n]) + Array(order[(2 * n)...])).sorted()
        return Split(train: data.rows(train), validation: data.rows(validation))
    }

    /// Validation losses recorded at each rung by `trials`.
    private static func rungValues(_ trials: [TrialRecord]) -> [Int: [Double]] {
        var rungs: [Int: [Double]] = [:]
        for trial in trials {
            for (round, loss) in trial.rungLosses { rungs[round, default: []].append(loss) }
        }
        return rungs
    }

    /// Rungs are counted in rounds at this learning rate. A trial at rate `lr` reaches rung
    /// `r` after `r · 0.1 / lr` rounds: boosting progress goes roughly with rate × rounds, so a
    /// trial with a small rate is compared with the others at the same progress, not after the
    /// same number of rounds (where it always looks worse and plain ASHA prunes it, which
    /// pushed searches towards large rates and away from the better models small rates make).
    static let rungLearningRate = 0.1

    /// The round at which a trial with `learningRate` reaches the rung `nominal`.
    static func rungRound(_ nominal: Int, learningRate: Double) -> Int {
        max(1, Int((Double(nominal) * rungLearningRate / learningRate).rounded()))
    }

    /// The rung (in rounds at `rungLearningRate`) that a trial with `learningRate` reaches at
    /// `round`, if any.
    static func rung(atRound round: Int, learningRate: Double, _ c: TuningConfiguration) -> Int? {
        var nominal = c.rungMinRounds
        while rungRound(nominal, learningRate: learningRate) < round { nominal *= c.reductionFactor }
        return rungRound(nominal, learningRate: learningRate) == round ? nominal : nil
    }

    /// The trainer of trial `number` at `unit`.
    private static func trainerConfiguration(
        _ c: TuningConfiguration, unit: [Double], number: Int, threads: Int
    ) -> TrainingConfiguration {
        var trainer = c.space.configuration(at: unit, base: c.base)
        trainer.rounds = c.maxRounds
        trainer.earlyStoppingRounds = c.earlyStoppingRounds
        trainer.calibrationFraction = 0
        trainer.threads = threads
        trainer.seed = c.seed &+ UInt64(number)
        return trainer
    }

    private static func runTrial(
        _ c: TuningConfiguration, trainer: TrainingConfiguration, number: Int, unit: [Double], splits: [Split],
        rungs: [Int: [Double]], deadline: ContinuousClock.Instant?
    ) -> TrialRecord {
        let clock = ContinuousClock()
        let started = clock.now
        let parameters = Dictionary(uniqueKeysWithValues: c.space.values(at: unit).map { ($0.key.rawValue, $0.value) })
        var record = TrialRecord(
            number: number, unit: unit, parameters: parameters, state: .completed, rmse: nil, rungLosses: [:],
            bestRound: 0, roundsTrained: 0, seconds: 0, error: nil)
        var rmses: [Double] = []
        var rounds: [Int] = []
        var trained: [Int] = []
        let pruning = c.pruning && splits.count == 1
        for split in splits {
            var losses: [Int: Double] = [:]
            var pruned = false
            do {
                let result = try Trainer(configuration: trainer).train(split.train, validation: split.validation, shouldStop: { p in
                    guard let loss = p.validationLoss else { return false }
                    if let deadline, clock.now >= deadline {
                        pruned = true
                        return true
                    }
                    guard pruning, let rung = Self.rung(atRound: p.round, learningRate: trainer.learningRate, c) else {
                        return false
                    }
                    losses[rung] = loss
                    let others = rungs[rung] ?? []
                    guard others.count >= c.reductionFactor else { return false }
                    // Continue only within the best 1/η of everyone at this rung, this trial included.
                    let keep = max(1, (others.count + 1) / c.reductionFactor)
                    let better = others.filter { $0 < loss }.count
                    if better >= keep {
                        pruned = true
                        return true
                    }
                    return false
                })
                rmses.append(result.report.holdout?.metrics.rmse ?? .nan)
                rounds.append(result.report.bestRound)
                trained.append(result.report.roundsTrained)
                record.rungLosses.merge(losses) { $1 }
                if pruned { record.state = .pruned }
            } catch {
                record.state = .failed
                record.error = "\(error)"
                break
            }
        }
        if record.state != .failed {
            let mean = rmses.reduce(0, +) / Double(rmses.count)
            record.rmse = mean.isFinite ? mean : nil
            record.bestRound = rounds.reduce(0, +) / max(rounds.count, 1)
            record.roundsTrained = trained.reduce(0, +) / max(trained.count, 1)
        }
        record.seconds = (clock.now - started).seconds
        return record
    }
}
