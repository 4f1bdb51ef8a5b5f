import DataCleaning
import Dispatch
import Foundation
import Synchronization
import TreeModel
import TreeTraining

/// Searches the trainer's parameters for the lowest validation RMSE (in dollars).
///
/// - Proposals: `startupTrials` uniform random points, then multivariate TPE.
/// - Trials run in batches of `parallelTrials`, each trainer with its share of the threads.
///   A batch's proposals and pruning decisions depend only on earlier batches, so a run is
///   deterministic for a seed and a trial budget (a time budget decides how many batches run).
/// - Successive halving on rounds (ASHA): at rounds r, rη, rη², … a trial continues only if
///   its validation loss is among the best 1/η of the trials that reached that rung before.
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

        while run.trials.count < c.maxTrials {
            if let deadline, clock.now >= deadline {
                run.stopReason = "time budget of \(Int(c.timeBudgetSeconds!)) s spent"
                break
            }
            let first = run.trials.count
            let numbers = Array(first..<min(c.maxTrials, first + parallel))
            let units = propose(numbers)
            let rungs = rungValues()
            let results = Mutex<[Int: TrialRecord]>([:])
            DispatchQueue.concurrentPerform(iterations: numbers.count) { i in
                let trial = Self.runTrial(
                    c, number: numbers[i], unit: units[i], splits: splits, rungs: rungs, threads: threadsPerTrial,
                    deadline: deadline)
                results.withLock { $0[i] = trial }
            }
            let finished = results.withLock { $0 }
            for i in numbers.indices {
                let trial = finished[i]!
                run.trials.append(trial)
                let elapsed = seconds(clock.now - start)
                progress(TuningProgress(
                    trialsDone: run.trials.count, trialBudget: c.maxTrials, bestRMSE: run.best?.rmse,
                    elapsedSeconds: elapsed, secondsLeft: c.timeBudgetSeconds.map { max(0, $0 - elapsed) },
                    lastTrial: trial))
            }
            try record(run)
        }
        if run.stopReason == nil { run.stopReason = "trial budget of \(c.maxTrials) reached" }
        run.finished = Date()
        try record(run)
        return run
    }

    /// The best trial's parameters on top of the base configuration, ready to train a model.
    public static func bestConfiguration(of run: TuningRun) -> TrainingConfiguration? {
        guard let best = run.best else { return nil }
        var c = run.configuration.space.configuration(at: best.unit, base: run.configuration.base)
        c.rounds = run.configuration.maxRounds
        c.earlyStoppingRounds = run.configuration.earlyStoppingRounds
        return c
    }

    // MARK: - Proposals

    private func propose(_ numbers: [Int]) -> [[Double]] {
        let d = configuration.space.dimensions.count
        let history = run.trials.compactMap { t in t.rmse.map { (point: t.unit, loss: $0) } }
        var pending: [[Double]] = []
        return numbers.map { number in
            // One generator per trial number: a resumed run proposes what the first would have.
            var random = SeededRandom(seed: configuration.seed &+ UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
            let unit = number < configuration.startupTrials || history.count < 2
                ? ParzenSampler.uniform(dimensions: d, random: &random)
                : ParzenSampler().propose(history: history, pending: pending, dimensions: d, random: &random)
            pending.append(unit)
            return unit
        }
    }

    // MARK: - Trials

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

    /// Validation losses recorded at each rung by earlier trials.
    private func rungValues() -> [Int: [Double]] {
        var rungs: [Int: [Double]] = [:]
        for trial in run.trials {
            for (round, loss) in trial.rungLosses { rungs[round, default: []].append(loss) }
        }
        return rungs
    }

    private static func isRung(_ round: Int, _ c: TuningConfiguration) -> Bool {
        var r = c.rungMinRounds
        while r < round { r *= c.reductionFactor }
        return r == round
    }

    private static func runTrial(
        _ c: TuningConfiguration, number: Int, unit: [Double], splits: [Split], rungs: [Int: [Double]], threads: Int,
        deadline: ContinuousClock.Instant?
    ) -> TrialRecord {
        let clock = ContinuousClock()
        let started = clock.now
        var trainer = c.space.configuration(at: unit, base: c.base)
        trainer.rounds = c.maxRounds
        trainer.earlyStoppingRounds = c.earlyStoppingRounds
        trainer.calibrationFraction = 0
        trainer.threads = threads
        trainer.seed = c.seed &+ UInt64(number)
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
                    guard pruning, Self.isRung(p.round, c) else { return false }
                    losses[p.round] = loss
                    let others = rungs[p.round] ?? []
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
        record.seconds = seconds(clock.now - started)
        return record
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
