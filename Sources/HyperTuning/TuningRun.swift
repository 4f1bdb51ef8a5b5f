import Foundation

/// One trial of a tuning run.
public struct TrialRecord: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// Trained to early stopping or the round limit.
        case completed
        /// Stopped at a successive-halving rung (or when the time budget ran out).
        case pruned
        /// Training failed; `error` says why.
        case failed
    }

    /// 0, 1, 2, … in proposal order.
    public var number: Int
    /// The proposal in the unit cube (kept so a resumed run models the same history).
    public var unit: [Double]
    /// The parameter values, by `SearchSpace.Parameter` name.
    public var parameters: [String: Double]
    public var state: State
    /// Validation RMSE in dollars of the trial's model (nil when failed).
    public var rmse: Double?
    /// Validation loss (RMSE on the training target's scale) at each rung the trial reached,
    /// keyed by the rung (rounds at learning rate 0.1, see `Tuner.rungLearningRate`).
    public var rungLosses: [Int: Double]
    /// Rounds kept (the best validation round).
    public var bestRound: Int
    /// Rounds trained.
    public var roundsTrained: Int
    public var seconds: Double
    public var error: String?
}

/// A tuning run: its settings and every trial so far. Saved after every batch of trials, so
/// a run can be inspected while it goes and resumed after it stops.
public struct TuningRun: Sendable, Codable {
    public var id: String
    public var configuration: TuningConfiguration
    public var trials: [TrialRecord]
    public var started: Date
    public var finished: Date?
    /// Why the run ended (trial budget, time budget), once it has.
    public var stopReason: String?
    /// How the final model is fitted, once `Tuner.fitFinal` has decided (nil in runs saved
    /// before it existed: those fit with early stopping, see `Tuner.bestConfiguration`).
    public var final: FinalFit?

    /// The trial the final model is fitted from: once the final fit has re-scored the
    /// finalists, the one it chose (`FinalFit.trial`); before, the lowest validation RMSE.
    public var best: TrialRecord? {
        if let chosen = final?.trial, let trial = trials.first(where: { $0.number == chosen }) { return trial }
        return searchBest
    }

    /// The trial with the lowest validation RMSE on the search's split.
    public var searchBest: TrialRecord? {
        trials.filter { $0.rmse != nil }.min { $0.rmse! < $1.rmse! }
    }
}

/// The final fit of a run's best trial: polished (a smaller learning rate, more rounds) when
/// that validated better, and sized to train on every row but the calibration slice.
public struct FinalFit: Sendable, Codable, Equatable {
    /// The trial fitted: the finalist with the lowest mean validation RMSE over the search's
    /// split and a second one (nil in runs saved before finalists were re-scored: the best).
    public var trial: Int?
    /// Each finalist's validation RMSE on the second split, by trial number (empty when none
    /// were re-scored).
    public var finalistRMSE: [Int: Double]?
    /// The best trial's learning rate.
    public var searchedLearningRate: Double
    /// The learning rate the final model uses (smaller than the searched one when polished).
    public var learningRate: Double
    /// Validation RMSE in dollars at `learningRate` (mean over folds).
    public var validationRMSE: Double
    /// Validation RMSE of the best trial trained on to early stopping, when the search had
    /// pruned it (nil otherwise).
    public var finishedRMSE: Double?
    /// Validation RMSE of the polishing trial, kept or not (nil when none ran).
    public var polishedRMSE: Double?
    /// Best validation round at `learningRate` (mean over folds).
    public var bestRound: Int
    /// Rounds the final model trains, without early stopping: `bestRound` scaled by how many
    /// more rows the final model trains on than a trial did.
    public var rounds: Int
    public var seconds: Double
}

/// Progress of a tuning run, after every trial.
public struct TuningProgress: Sendable {
    public var trialsDone: Int
    public var trialBudget: Int
    public var bestRMSE: Double?
    public var elapsedSeconds: Double
    /// Seconds left in the time budget, if there is one.
    public var secondsLeft: Double?
    public var lastTrial: TrialRecord
}
