import ArtifactStore
import Foundation
import Logging
import Prometheus
import Synchronization

/// The request log: every call as a guestbook row (SQLite or PostgreSQL) and, with its full
/// request and response, a record in the payload archive (zstd segments sealed into the store).
///
/// Off the serving path: `record` puts the call in the `CallInbox` and returns. The parts:
/// - the `Appender` (a thread of its own at a lower priority: it blocks on the disk, which must
///   not hold a thread of the cooperative pool) drains the inbox in groups, appends them to the
///   open archive segment (one write per group), fsyncs it every `syncInterval` and then hands
///   their rows to the guestbook writer, and hands each finished segment to the `SegmentSealer`
///   (a thread of its own), which puts it into the store — retrying with backoff while the
///   store is unreachable, so the appender never waits on it; when it lags by more than `maxAppendLag`, its catch-up
///   thread at the process's priority runs its rounds until the inbox is fresh;
/// - the `GuestbookWriter` (a task) commits waiting rows to the guestbook in batches, every
///   `commitInterval` or as soon as a batch is waiting; rows beyond `pendingCapacity` spill to
///   the `SpillJournal`, which it replays once the database answers again (idempotently: rows
///   carry unique ids); it also applies the `Retention`.
///
/// Lock order (a part holding one lock may take only those after it, never one before):
/// 1. `Appender.state` (the open segment, the row sequence) — held for a whole round;
/// 2. `CallInbox.state` (calls waiting for the appender) — a round takes the calls under it;
/// 3. `GuestbookWriter.pending` (rows waiting for the database);
/// 4. `SpillJournal.state` (the open spill file);
/// 5. `SegmentSealer.state` (finished segments waiting for the store) — never held while sealing.
/// `RequestLog.tasks` and `AppenderThread.result` are taken alone. The semaphores (the
/// appender's and the catch-up thread's wake-ups) are only signalled, never waited on, under a lock.
///
/// `shutdown` flushes: everything queued is appended, committed or spilled, and the segment
/// sealed. After a crash, `start` reads the segments left open back into the guestbook.
public final class RequestLog: Sendable {
    public let configuration: RequestLogConfiguration
    public let guestbook: any Guestbook
    private let store: ArtifactStore
    private let counters: RequestLogCounters
    private let spill: SpillJournal
    private let logger: Logger
    private let inbox: CallInbox
    private let appender: Appender
    private let writer: GuestbookWriter
    /// What runs between `start` and `shutdown` (taken alone: see the lock order).
    private let tasks = Mutex<Tasks?>(nil)

    private struct Tasks {
        var appender: AppenderThread
        var writer: Task<Void, Never>
        var ticker: Task<Void, Never>
    }

    /// A log writing rows to `guestbook` and sealing archive segments into `store`; counters go
    /// into `registry` (the server's) when given. Call `start()` before recording.
    public convenience init(
        configuration: RequestLogConfiguration, guestbook: any Guestbook, store: ArtifactStore,
        registry: PrometheusCollectorRegistry? = nil, logger: Logger = Logger(label: "loupe.requestlog")
    ) throws {
        try self.init(
            configuration: configuration, guestbook: guestbook, store: store, registry: registry, logger: logger,
            hooks: RequestLogHooks())
    }

    /// The same, with `hooks` for tests to watch and steer the appender.
    init(
        configuration: RequestLogConfiguration, guestbook: any Guestbook, store: ArtifactStore,
        registry: PrometheusCollectorRegistry? = nil, logger: Logger = Logger(label: "loupe.requestlog"),
        hooks: RequestLogHooks
    ) throws {
        self.configuration = configuration
        self.guestbook = guestbook
        self.store = store
        self.logger = logger
        counters = RequestLogCounters(registry: registry)
        spill = try SpillJournal(directory: configuration.archiveDirectory + "/spill", level: configuration.compressionLevel)
        inbox = CallInbox(configuration: configuration, hooks: hooks)
        writer = GuestbookWriter(
            configuration: configuration, guestbook: guestbook, spill: spill, counters: counters, logger: logger)
        appender = Appender(
            configuration: configuration, inbox: inbox, writer: writer, counters: counters, logger: logger, hooks: hooks)
    }

    // MARK: The serving path

    /// Hands one finished call to the log. Never blocks on the disk or the database.
    public func record(_ call: CallRecord) {
        let call = call.withoutCredentials
        let (accepted, lagging) = inbox.add(call)
        counters.add(.queued, 1)
        if accepted {
            inbox.wakeAppender()
            if lagging { appender.callForHelp() }
        } else {
            counters.add(.dropped, 1)
            logger.error("a call was not recorded: the request log is closed or its queue is over its byte bound",
                         metadata: ["method": "\(call.method)", "principal": "\(call.principal)"])
        }
    }

    // MARK: Lifecycle

    /// Recovers what a crash left (open segments are read back into the guestbook through the
    /// spill files, then sealed) and starts the appender and the writer.
    public func start() async throws {
        let archive = try PayloadArchive(
            directory: configuration.archiveDirectory, store: store, maxBytes: configuration.segmentMaxBytes,
            maxAge: configuration.segmentMaxAge, level: configuration.compressionLevel, runID: configuration.runID)
        let (rows, damage, files) = try PayloadArchive.recover(directory: configuration.archiveDirectory, store: store)
        for cut in damage {
            logger.warning("an archive segment left by a crash ended in a torn record; cut it there", metadata: ["damage": "\(cut)"])
        }
        if !rows.isEmpty {
            // Through the spill journal, so they are durable before the segments are forgotten.
            try spill.append(rows)
            counters.add(.recovered, rows.count)
            logger.notice("recovered calls from archive segments left open", metadata: ["rows": "\(rows.count)"])
        }
        for file in files { try? FileManager.default.removeItem(atPath: file) }
        // Replay before serving when the database answers, so the guestbook is whole from the
        // first call on; a backlog larger than the startup limit (or a database that fails)
        // is left to the writer, which replays it after new calls' rows.
        if spill.hasFiles { _ = await writer.replaySpill(until: .now + configuration.startupReplayLimit) }
        let appenderThread = appender.start(archive: archive)
        let writerTask = Task.detached { [writer] in await writer.run() }
        let ticker = Task.detached { [writer, configuration] in
            // The writer's beat: waiting rows are committed, retention and spill replay checked.
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.commitInterval)
                writer.wake()
            }
        }
        tasks.withLock { $0 = Tasks(appender: appenderThread, writer: writerTask, ticker: ticker) }
    }

    /// Graceful shutdown: stops taking records, appends and commits (or spills) all of them,
    /// seals the open segment, closes the guestbook.
    public func shutdown() async {
        guard let running = tasks.withLock({ t -> Tasks? in
            defer { t = nil }
            return t
        }) else { return }
        inbox.close()
        inbox.wakeAppender()
        appender.callForHelp()
        let sealedFiles = await running.appender.finished()
        writer.stop()
        await running.writer.value
        // Every row is committed or spilled now: the sealed segments' local copies can go.
        for file in sealedFiles { try? FileManager.default.removeItem(atPath: file.path) }
        running.ticker.cancel()
        writer.finish()
        await guestbook.close()
    }

    /// The counters now.
    public var counts: RequestLogCounts {
        RequestLogCounts(
            queued: counters.value(.queued), written: counters.value(.written), spilled: counters.value(.spilled),
            replayed: counters.value(.replayed), dropped: counters.value(.dropped), recovered: counters.value(.recovered),
            pending: writer.pendingCount)
    }

    /// Waits until every call recorded so far is written or spilled (or `timeout` passes);
    /// returns whether it got there.
    @discardableResult
    public func flush(timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout) { c in c.queued == c.written + c.spilled + c.dropped && c.pending == 0 }
    }

    /// Waits until no spill file is left to replay (or `timeout` passes).
    @discardableResult
    public func waitForReplay(timeout: Duration = .seconds(30)) async -> Bool {
        await waitUntil(timeout) { [spill] _ in spill.isEmpty }
    }

    private func waitUntil(_ timeout: Duration, _ done: (RequestLogCounts) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if done(counts) { return true }
            writer.wake()
            try? await Task.sleep(for: .milliseconds(5))
        }
        return done(counts)
    }

    /// The diamonds of recent successful Predict calls (for the drift trigger).
    public func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond] {
        try await guestbook.recentPredictInputs(since: since, limit: limit)
    }

    // MARK: For tests

    /// How many calls were appended to the archive so far (by either thread).
    var appendedCalls: Int { appender.appendedCalls }

    /// How many times the catch-up thread took over.
    var catchUps: Int { counters.value(.catchUps) }
}
