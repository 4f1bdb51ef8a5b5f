import Foundation

/// How the request log records. Every field has a default that suits one machine.
public struct RequestLogConfiguration: Sendable {
    /// The payload archive's working directory (`archiveDirectory(inStore:)`): the open
    /// segment and the spill files. Sealed segments go into the artifact store.
    public var archiveDirectory: String
    /// Guestbook rows older than this are removed (nil keeps them forever).
    public var retention: Duration?
    /// How often old rows are removed.
    public var retentionCheckInterval: Duration
    /// A segment is sealed once it holds this many bytes…
    public var segmentMaxBytes: Int
    /// …or has been open this long.
    public var segmentMaxAge: Duration
    /// Rows that may wait in memory for the database; past it they spill to disk.
    public var pendingCapacity: Int
    /// Rows per database transaction.
    public var batchSize: Int
    /// Waiting rows are committed to the guestbook this often (and at once when a batch's
    /// worth is waiting). Their calls are already in the fsynced archive segment, which a
    /// crash recovery reads back, so a longer interval loses nothing: it only delays when
    /// `loupe logs query` sees a call. At a modest rate it turns a transaction per appended
    /// group (~500/s at 2,000 calls/s) into a few per second.
    public var commitInterval: Duration
    /// fsync the archive segment at all (power-loss safety; kill -9 loses no appended record either
    /// way). Off only in tests.
    public var syncAppends: Bool
    /// The appender writes every group at once (what a kill -9 can lose stays the group in
    /// hand) but fsyncs the segment at most this often, and hands the rows of what it synced
    /// to the guestbook writer then: so a row is in the guestbook only once its call is on
    /// disk, and a power loss loses at most this interval's calls, rows and payloads together.
    /// An fsync per group (zero) cost ~12 of the appender's ~38 µs of CPU per call at 2,000
    /// calls/s (groups of ~5).
    public var syncInterval: Duration
    /// How long to wait before trying a failed database again.
    public var retryInterval: Duration
    /// zstd level of archive records over 4 KiB (1: fast; payloads are mostly doubles); smaller
    /// records are stored in their frame uncompressed (see `SegmentWriter`).
    public var compressionLevel: Int32
    /// Payload bytes the hand-off queue may hold before calls' records are dropped (counted
    /// in `loupe_requestlog_dropped_total` and logged; only a stalled disk gets here).
    public var queueLimitBytes: Int
    /// How long a graceful shutdown keeps trying the database before spilling what is left.
    public var shutdownTimeout: Duration
    /// Unique per process: row ids are `<runID>-<sequence>`.
    public var runID: String
    /// While calls come, the appender drains them this often, one group (one write) each time
    /// (at once when its previous group was large, `Appender.smallGroup`); the first call
    /// after a quiet spell wakes it, and it waits this long for more. At a modest rate that turns a group per call
    /// into a group per window (with 2 ms the log's CPU at 2,000 calls/s fell from ~260 to
    /// ~115 µs per call); under load groups form anyway while the appender works, and a wait there made
    /// bursts that showed in the serving p99 (bench/requestlog.py's Predict ×8: 3.2–3.8 ms
    /// with a 5 ms wait after every wake-up against 2.0–2.9 ms without). Calls answered
    /// within the window are also what a kill -9 can lose (docs/OPERATIONS.md). Zero: never wait.
    public var groupWindow: Duration
    /// At start, spilled rows are replayed into the guestbook for up to this long before the
    /// log takes calls (so the guestbook is whole from the first call on when the backlog is
    /// small); a larger backlog goes on replaying in the background, after new calls' rows.
    public var startupReplayLimit: Duration
    /// The appender and the SQLite writer run at this nice value and as `SCHED_BATCH` (Linux;
    /// 0 leaves them as the process is), so on a busy machine serving threads go first, a log
    /// thread waking up never preempts one, and the log catches up after.
    public var backgroundNice: Int32
    /// The most the appender may fall behind at `backgroundNice`: when the oldest call waiting
    /// for it is older than this (a saturated machine leaves a nice-10 thread a sliver of a
    /// core), a thread at the process's own priority appends until the queue is fresh again.
    /// The log yields to serving, but by no more than this, which bounds what a kill -9 can
    /// lose while others keep the cores busy. nil: no bound (the log's threads then lag as far
    /// as the scheduler leaves them behind).
    public var maxAppendLag: Duration?

    public init(
        archiveDirectory: String, retention: Duration? = .seconds(30 * 86_400), retentionCheckInterval: Duration = .seconds(600),
        segmentMaxBytes: Int = 64 << 20, segmentMaxAge: Duration = .seconds(3600), pendingCapacity: Int = 10_000,
        batchSize: Int = 1_000, commitInterval: Duration = .milliseconds(250), syncAppends: Bool = true,
        syncInterval: Duration = .milliseconds(100), retryInterval: Duration = .milliseconds(500),
        compressionLevel: Int32 = 1, queueLimitBytes: Int = 1 << 30, shutdownTimeout: Duration = .seconds(5),
        runID: String = RequestLogConfiguration.newRunID(), groupWindow: Duration = .milliseconds(2),
        backgroundNice: Int32 = 10, maxAppendLag: Duration? = .milliseconds(100), startupReplayLimit: Duration = .seconds(5)
    ) {
        self.maxAppendLag = maxAppendLag
        self.startupReplayLimit = startupReplayLimit
        self.groupWindow = groupWindow
        self.backgroundNice = backgroundNice
        self.archiveDirectory = archiveDirectory
        self.retention = retention
        self.retentionCheckInterval = retentionCheckInterval
        self.segmentMaxBytes = segmentMaxBytes
        self.segmentMaxAge = segmentMaxAge
        self.pendingCapacity = pendingCapacity
        self.batchSize = batchSize
        self.commitInterval = commitInterval
        self.syncAppends = syncAppends
        self.syncInterval = syncInterval
        self.retryInterval = retryInterval
        self.compressionLevel = compressionLevel
        self.queueLimitBytes = queueLimitBytes
        self.shutdownTimeout = shutdownTimeout
        self.runID = runID
    }

    /// The payload archive's working directory in the store at `storePath`. On disk it keeps
    /// the name `capsule` (from when the archive was called the time capsule): existing stores
    /// have their open segments and spill files there, so the name must not change.
    public static func archiveDirectory(inStore storePath: String) -> String { storePath + "/capsule" }

    /// The lag bound past which the catch-up thread appends: only when the appender runs at a
    /// lower priority (nil: no catch-up thread).
    var catchUpAfter: Duration? { backgroundNice > 0 ? maxAppendLag : nil }

    /// 8 random lower-case hex digits.
    public static func newRunID() -> String {
        String(UInt32.random(in: .min ... .max), radix: 16).leftPadded(to: 8)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
