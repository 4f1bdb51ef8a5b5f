import Catalog
import Foundation

/// What the scheduler is doing and did: saved in the store for `loupe status`.
public struct SchedulerStatus: Sendable, Codable, Equatable {
    public struct Run: Sendable, Codable, Equatable {
        /// What started it: "interval", "inbox", "drift (carat PSI 0.31)".
        public var trigger: String
        public var job: String
        public var started: Date
        public var finished: Date?
        public var promoted: Bool?
        /// The promotion decision, with the numbers.
        public var result: String?
        public var modelVersion: Int?
        public var error: String?
    }

    /// The triggers that are on.
    public var triggers: [String]
    /// The job running now, if any.
    public var running: String?
    public var lastRun: Run?
    /// When the interval trigger fires next.
    public var nextIntervalRun: Date?
    /// After failures: no scheduled run before this.
    public var nextRetry: Date?
    /// A trigger fired but the minimum gap since the last run holds it until then.
    public var waitingForGapUntil: Date?
    public var consecutiveFailures = 0
    /// Triggers that fired and wait for a run.
    public var pendingTriggers: [String] = []
    /// The last population stability index per feature, and how many recent rows it used.
    public var drift: [String: Double] = [:]
    public var driftRows = 0
    /// Set while drift is past the threshold but there are no new labels to retrain on.
    public var driftNeedsLabels: String?
    public var inboxProcessed = 0
    public var inboxFailed = 0
    public var updated: Date

    public init(triggers: [String], updated: Date) {
        self.triggers = triggers
        self.updated = updated
    }
}

extension Catalog {
    static let schedulerRecord = (kind: "scheduler", id: "status")

    /// Saves the scheduler's status.
    public func save(_ status: SchedulerStatus) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try store.putRecord(kind: Self.schedulerRecord.kind, id: Self.schedulerRecord.id, json: Array(try encoder.encode(status)))
    }

    /// The scheduler's last saved status, if a server ever ran one on this store.
    public func schedulerStatus() throws -> SchedulerStatus? {
        guard let bytes = try store.record(kind: Self.schedulerRecord.kind, id: Self.schedulerRecord.id) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(SchedulerStatus.self, from: Data(bytes))
    }
}
