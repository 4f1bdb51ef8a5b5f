import Retraining

/// When the scheduler retrains. Every trigger can be turned off; all run in the server.
public struct SchedulerConfiguration: Sendable {
    /// Retrain every this long (nil: never on a timer).
    public var interval: Duration?
    /// Watch `<store>/inbox` for CSV files: each is ingested (appended to the dataset) and
    /// triggers a retrain. Processed files move to `inbox/processed/`, bad ones to
    /// `inbox/failed/` with the reason beside them; nothing is deleted.
    public var inbox: Bool
    /// Retrain when the population stability index of recent inputs against the training
    /// data exceeds `driftThreshold` on any feature (nil: off).
    public var driftThreshold: Double?
    /// Fewest recent inputs before drift is judged.
    public var driftMinimumRows: Int
    /// Never start a scheduled retrain sooner than this after the last one started.
    public var minimumGap: Duration
    /// After a failed retrain, wait this long before the next try, doubling per failure up to `maximumBackoff`.
    public var initialBackoff: Duration
    public var maximumBackoff: Duration
    /// How often the triggers are checked.
    public var checkEvery: Duration
    /// A file in the inbox must be this old (unchanged) before it is taken, so a file still
    /// being copied in is not read half-written.
    public var inboxSettle: Duration
    /// The retraining request the scheduler makes (model, dataset, margin, tuning budget).
    public var request: RetrainRequest

    public init(
        interval: Duration? = nil, inbox: Bool = true, driftThreshold: Double? = 0.2, driftMinimumRows: Int = 1000,
        minimumGap: Duration = .seconds(600), initialBackoff: Duration = .seconds(60),
        maximumBackoff: Duration = .seconds(3600), checkEvery: Duration = .seconds(5), inboxSettle: Duration = .seconds(2),
        request: RetrainRequest = RetrainRequest(requestedBy: "scheduler")
    ) {
        self.interval = interval
        self.inbox = inbox
        self.driftThreshold = driftThreshold
        self.driftMinimumRows = driftMinimumRows
        self.minimumGap = minimumGap
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.checkEvery = checkEvery
        self.inboxSettle = inboxSettle
        self.request = request
    }
}
