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
    /// Validation loss (RMSE on the training target's scale) at each rung the trial reached.
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

    /// The trial with the lowest validation RMSE.
    public var best: TrialRecord? {
        trials.filter { $0.rmse != nil }.min { $0.rmse! < $1.rmse! }
    }
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
