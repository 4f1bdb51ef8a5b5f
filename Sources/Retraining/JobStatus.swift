import Foundation

/// Where a retraining job is.
public enum JobStage: String, Sendable, Codable, CaseIterable {
    case queued, preparingData, tuning, training, evaluating, registering, swapping, done, failed
}

/// A snapshot of a job, as `GetJob` returns it.
public struct JobStatus: Sendable, Codable, Equatable {
    public var id: String
    /// The model it retrains, and who asked (nil in jobs recorded before they were kept).
    public var model: String?
    public var requestedBy: String?
    /// The process running it, `host:pid` (nil in jobs recorded before it was kept).
    public var owner: String?
    public var stage: JobStage
    /// 0…100.
    public var percent: Double
    /// Seconds left, when known.
    public var etaSeconds: Double?
    /// What is happening now, for a person.
    public var message: String
    public var started: Date
    public var finished: Date?
    /// Set when the stage is `done`.
    public var outcome: RetrainOutcome?
    /// Set when the stage is `failed`.
    public var error: String?

    public var isFinished: Bool { stage == .done || stage == .failed }
}
