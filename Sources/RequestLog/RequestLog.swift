import ArtifactStore
import Foundation
import Logging
import Prometheus
import Synchronization

/// The request log: every call as a guestbook row (SQLite or PostgreSQL) and, with its full
/// request and response, a record in the time capsule (zstd segments sealed into the store).
///
/// Off the serving path: `record` appends to an in-memory hand-off queue and returns. Two
/// tasks do the work:
/// - the appender (a thread of its own: it blocks on the disk, which must not hold a thread of
///   the cooperative pool) drains the queue in groups, appends them to the open capsule segment (one
///   write per group), fsyncs it every `syncInterval` and then hands their rows to the writer; rows
///   beyond `pendingCapacity` waiting for the database spill to a durable spill file instead;
///   it runs at a lower priority, and when it lags by more than `maxAppendLag` a catch-up thread
///   at the process's priority runs its rounds (one at a time, under one lock) until it is fresh;
/// - the writer commits waiting rows to the guestbook in batches, every `commitInterval` or
///   as soon as a batch is waiting (the segment holds the calls meanwhile); when the database fails
///   or is slow, rows wait (within the bound), and once it answers again the spill files are
///   replayed into it (idempotently: rows carry unique ids).
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
    private let inbox = Mutex(Inbox())
    /// What the appender's rounds share, whichever thread runs them.
    private let appending = Mutex(AppenderState())
    /// `maxAppendLag` when the appender runs at a lower priority (nil otherwise: no catch-up).
    private let catchUpAfter: Duration?
    /// Wakes the catch-up thread (a call found the appender lagging, or shutdown).
    private let catchUpWake = DispatchSemaphore(value: 0)
    private let pending = Mutex(Pending())
    /// Wakes the idle appender thread; `appenderSignalled` stays set while the appender is
    /// busy, so calls signal only the first time after it went idle.
    private let appenderWake = DispatchSemaphore(value: 0)
    private let appenderSignalled = Atomic<Bool>(false)
    /// How often a call signalled the appender (tests: none while it keeps up).
    private let appenderSignals = Atomic<Int>(0)
    /// Tests: the appender thread takes no calls while set (a starved appender, made certain).
    let appenderHeldForTesting = Atomic<Bool>(false)
    private let writerSignals: AsyncStream<Void>
    private let writerWake: AsyncStream<Void>.Continuation
    private let tasks = Mutex<Tasks?>(nil)

    private struct Inbox {
        var calls: [CallRecord] = []
        var bytes = 0
        var closed = false
        /// When the oldest call in `calls` was handed over (kept only with a lag bound).
        var oldest = ContinuousClock.now
        /// The catch-up thread was called and has not caught up yet.
        var catchingUp = false
    }

    private struct Pending {
        var rows: [GuestbookRow] = []
        var inFlight = 0
        /// Sequence number of the first row of the batch being inserted.
        var inFlightFirst: Int?
        var stopping = false
        var failing = false
        var count: Int { rows.count + inFlight }
    }

    private struct Tasks {
        var appender: AppenderThread
        var writer: Task<Void, Never>
        var ticker: Task<Void, Never>
    }

    /// A log writing rows to `guestbook` and sealing capsule segments into `store`; counters go
    /// into `registry` (the server's) when given. Call `start()` before recording.
    public init(
        configuration: RequestLogConfiguration, guestbook: any Guestbook, store: ArtifactStore,
        registry: PrometheusCollectorRegistry? = nil, logger: Logger = Logger(label: "loupe.requestlog")
    ) throws {
        self.configuration = configuration
        self.guestbook = guestbook
        self.store = store
        self.logger = logger
        catchUpAfter = configuration.backgroundNice > 0 ? configuration.maxAppendLag : nil
        counters = RequestLogCounters(registry: registry)
        spill = try SpillJournal(directory: configuration.capsuleDirectory + "/spill", level: configuration.compressionLevel)
        // Wake-ups, not data: one pending signal is enough.
        let writer = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        writerSignals = writer.stream
        writerWake = writer.continuation
    }

    // MARK: The serving path

    /// Hands one finished call to the log. Never blocks on the disk or the database.
    public func record(_ call: CallRecord) {
        let call = call.withoutCredentials
        let (accepted, lagging) = inbox.withLock { [catchUpAfter] inbox -> (Bool, Bool) in
            guard !inbox.closed, inbox.bytes + call.payloadBytes <= configuration.queueLimitBytes else { return (false, false) }
            inbox.calls.append(call)
            inbox.bytes += call.payloadBytes
            guard let catchUpAfter else { return (true, false) }
            // A clock read per call (~20 ns): how long the oldest waiting call has waited.
            let now = ContinuousClock.now
            if inbox.calls.count == 1 {
                inbox.oldest = now
                return (true, false)
            }
            guard !inbox.catchingUp, now - inbox.oldest > catchUpAfter else { return (true, false) }
            inbox.catchingUp = true
            return (true, true)
        }
        counters.add(.queued, 1)
        if accepted {
            wakeAppender()
            if lagging { catchUpWake.signal() }
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
        let capsule = try Capsule(
            directory: configuration.capsuleDirectory, store: store, maxBytes: configuration.segmentMaxBytes,
            maxAge: configuration.segmentMaxAge, level: configuration.compressionLevel, runID: configuration.runID)
        let (rows, damage, files) = try Capsule.recover(directory: configuration.capsuleDirectory, store: store)
        for cut in damage {
            logger.warning("a capsule segment left by a crash ended in a torn record; cut it there", metadata: ["damage": "\(cut)"])
        }
        if !rows.isEmpty {
            // Through the spill journal, so they are durable before the segments are forgotten.
            try spill.append(rows)
            counters.add(.recovered, rows.count)
            logger.notice("recovered calls from capsule segments left open", metadata: ["rows": "\(rows.count)"])
        }
        for file in files { try? FileManager.default.removeItem(atPath: file) }
        // Replay before serving when the database answers, so the guestbook is whole from the
        // first call on; a backlog larger than the startup limit (or a database that fails)
        // is left to the writer, which replays it after new calls' rows.
        if spill.hasFiles { _ = await replaySpill(until: .now + configuration.startupReplayLimit) }
        appending.withLock { $0 = AppenderState(capsule: capsule) }
        let appender = AppenderThread()
        appender.start(nice: configuration.backgroundNice) { [self] in runAppender() }
        if let catchUpAfter { Thread { [self] in runCatchUp(after: catchUpAfter) }.start() }
        let writer = Task.detached { [self] in await runWriter() }
        let ticker = Task.detached { [writerWake, configuration] in
            // The writer's beat: waiting rows are committed, retention and spill replay checked.
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.commitInterval)
                writerWake.yield()
            }
        }
        tasks.withLock { $0 = Tasks(appender: appender, writer: writer, ticker: ticker) }
    }

    /// Graceful shutdown: stops taking records, appends and commits (or spills) all of them,
    /// seals the open segment, closes the guestbook.
    public func shutdown() async {
        guard let running = tasks.withLock({ t -> Tasks? in
            defer { t = nil }
            return t
        }) else { return }
        inbox.withLock { $0.closed = true }
        wakeAppender()
        catchUpWake.signal()
        let sealedFiles = await running.appender.finished()
        pending.withLock { $0.stopping = true }
        writerWake.yield()
        await running.writer.value
        // Every row is committed or spilled now: the sealed segments' local copies can go.
        for file in sealedFiles { try? FileManager.default.removeItem(atPath: file.path) }
        running.ticker.cancel()
        writerWake.finish()
        await guestbook.close()
    }

    /// The counters now.
    public var counts: RequestLogCounts {
        RequestLogCounts(
            queued: counters.value(.queued), written: counters.value(.written), spilled: counters.value(.spilled),
            replayed: counters.value(.replayed), dropped: counters.value(.dropped), recovered: counters.value(.recovered),
            pending: pending.withLock { $0.count })
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
            writerWake.yield()
            try? await Task.sleep(for: .milliseconds(5))
        }
        return done(counts)
    }

    /// The diamonds of recent successful Predict calls (for the drift trigger).
    public func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond] {
        try await guestbook.recentPredictInputs(since: since, limit: limit)
    }

    // MARK: The appender

    /// A sealed segment's local copy, kept until every row up to `last` is durable.
    struct SealedFile: Sendable {
        var path: String
        var last: Int
    }

    private func wakeAppender() {
        // Sequentially consistent, against the appender's store-then-look when it goes idle.
        if !appenderSignalled.exchange(true, ordering: .sequentiallyConsistent) {
            appenderSignals.add(1, ordering: .relaxed)
            appenderWake.signal()
        }
    }

    /// How many times calls woke the appender so far.
    var appenderWakeUps: Int { appenderSignals.load(ordering: .relaxed) }

    /// How many calls were appended to the capsule so far (by either thread).
    var appendedCalls: Int { appending.withLock { $0.sequence } }

    /// How many times the catch-up thread took over.
    var catchUps: Int { counters.value(.catchUps) }

    /// What the appender's rounds share: the open segment, the row sequence, the calls written
    /// but not yet fsynced, the sealed segments' local copies.
    struct AppenderState {
        var capsule: Capsule?
        var sequence = 0
        var sealed: [SealedFile] = []
        /// Written to the segment, not yet fsynced: their rows go to the writer at the next sync.
        var unsynced: [GuestbookRow] = []
        var lastSync = ContinuousClock.now
        /// The last segment is sealed: nothing more is appended.
        var finished = false
    }

    /// The appender thread's loop: while calls come, drains them every `groupWindow`; when none
    /// came, sleeps until a call wakes it, a sync is due, or 250 ms pass (the segment's age).
    private func runAppender() -> [SealedFile] {
        let window = configuration.groupWindow
        var lastGroup = 0
        var giveWay = GivingWay(enabled: configuration.backgroundNice > 0)
        while true {
            if lastGroup > 0 {
                // Calls are coming: the flag stays set, so callers do not signal (no futex call on
                // the serving path while the log keeps up), and the appender drains on its own beat,
                // letting a small group fill for `window` first.
                if Self.waitsForMore(afterGroupOf: lastGroup, window: window), !inbox.withLock({ $0.closed }) {
                    Thread.sleep(forTimeInterval: window.seconds)
                }
            } else {
                // Idle: callers signal from now on. A call that came before the flag was cleared
                // did not signal, so look once more before sleeping.
                appenderSignalled.store(false, ordering: .sequentiallyConsistent)
                if inbox.withLock({ $0.calls.isEmpty && !$0.closed }) {
                    // Wakes for calls, for the next sync when something waits for one, else every 250 ms.
                    let idle = Duration.milliseconds(250)
                    let (waiting, lastSync) = appending.withLock { (!$0.unsynced.isEmpty, $0.lastSync) }
                    let nap = waiting ? min(idle, configuration.syncInterval - (.now - lastSync)) : idle
                    let woken = appenderWake.wait(timeout: .now() + max(0, nap.seconds)) == .success
                    // The first call of a burst: let the group fill.
                    if woken, window > .zero, !inbox.withLock({ $0.closed }) { Thread.sleep(forTimeInterval: window.seconds) }
                }
            }
            // Checked right before the round: an appender woken while held must not append.
            while appenderHeldForTesting.load(ordering: .relaxed), !inbox.withLock({ $0.closed }) {
                Thread.sleep(forTimeInterval: 0.001)
            }
            let (taken, closed) = appending.withLock { appendRound(&$0, giveWay: &giveWay) }
            lastGroup = taken
            if closed { break }
        }
        return appending.withLock { state in
            state.finished = true
            do {
                if let path = try state.capsule?.seal() { state.sealed.append(SealedFile(path: path, last: state.sequence)) }
            } catch {
                logger.error("could not seal the last time capsule segment (it is sealed at the next start)",
                             metadata: ["error": "\(error)"])
            }
            state.capsule = nil  // releases the capsule's lock for the next log on this store
            return state.sealed
        }
    }

    /// The catch-up thread (at the process's own priority): sleeps until a call finds the
    /// oldest waiting call older than `lag` — the appender, at its lower priority, left behind on
    /// a saturated machine — then runs the appender's rounds until the queue is fresh again.
    private func runCatchUp(after lag: Duration) {
        makeThisThreadBackground(named: "loupe-catchup", nice: 0)
        var giveWay = GivingWay(enabled: false)
        while true {
            catchUpWake.wait()
            if inbox.withLock({ $0.closed }) { return }
            counters.add(.catchUps, 1)
            while true {
                let (_, closed) = appending.withLock { appendRound(&$0, giveWay: &giveWay) }
                let caughtUp = inbox.withLock { inbox -> Bool in
                    let caughtUp = closed || inbox.calls.isEmpty || ContinuousClock.now - inbox.oldest < lag / 2
                    if caughtUp { inbox.catchingUp = false }
                    return caughtUp
                }
                if caughtUp { break }
            }
        }
    }

    /// One round of the appender: takes what waits in the inbox, appends it to the segment (one
    /// write), fsyncs when due and hands the synced calls' rows to the writer, rotates the
    /// segment when due, and forgets sealed segments' copies once their rows are durable.
    /// Returns how many calls it took and whether the log is closed.
    private func appendRound(_ state: inout AppenderState, giveWay: inout GivingWay) -> (taken: Int, closed: Bool) {
        guard !state.finished, let capsule = state.capsule else { return (0, true) }
        let (batch, closed) = inbox.withLock { inbox in
            defer {
                inbox.calls = []
                inbox.bytes = 0
            }
            return (inbox.calls, inbox.closed)
        }
        if !batch.isEmpty {
            let runID = configuration.runID
            let rows = batch.map { call in
                state.sequence += 1
                return GuestbookRow(id: "\(runID)-\(state.sequence)", call: call)
            }
            do {
                try capsule.append(batch, rows: rows) { giveWay.checkpoint() }
                state.unsynced.append(contentsOf: rows)
            } catch {
                // The rows still reach the guestbook (in order, the unsynced ones first); only
                // the payloads are missing.
                logger.error("could not append to the time capsule", metadata: [
                    "calls": "\(rows.count)", "error": "\(error)",
                ])
                handToWriter(state.unsynced + rows)
                state.unsynced.removeAll(keepingCapacity: true)
            }
        }
        if !state.unsynced.isEmpty, closed || ContinuousClock.now - state.lastSync >= configuration.syncInterval {
            syncCapsule(capsule)
            state.lastSync = .now
            handToWriter(state.unsynced)
            state.unsynced.removeAll(keepingCapacity: true)
        }
        do {
            if let path = try capsule.rotateIfDue() {
                state.sealed.append(SealedFile(path: path, last: state.sequence))
                // Sealing synced the segment: its rows may go before its local copy is judged.
                handToWriter(state.unsynced)
                state.unsynced.removeAll(keepingCapacity: true)
            }
        } catch {
            logger.error("could not seal a time capsule segment (it stays open on disk and is retried at the next start)",
                         metadata: ["error": "\(error)"])
        }
        if !state.sealed.isEmpty {
            let durable = firstNotDurable()
            state.sealed.removeAll { file in
                guard file.last < durable else { return false }
                try? FileManager.default.removeItem(atPath: file.path)
                return true
            }
        }
        return (batch.count, closed)
    }

    /// fsyncs the open segment (unless syncs are off); a failure is logged, and the rows still
    /// go to the guestbook: they are in the file, only not known to be on disk.
    private func syncCapsule(_ capsule: Capsule) {
        guard configuration.syncAppends else { return }
        do {
            try capsule.sync()
        } catch {
            logger.error("could not fsync the time capsule segment", metadata: ["error": "\(error)"])
        }
    }

    /// A group smaller than this makes the appender wait `groupWindow` before the next one.
    static let smallGroup = 16

    /// Whether the appender, woken by a call, waits for more before appending: only after a
    /// small group. At a modest rate every call would otherwise be a group of its own, paying a
    /// `write` and an `fsync` (with a database transaction then, ~260 µs of CPU per call at
    /// 2,000 calls/s); under load groups are large by themselves and a wait would only make bursts.
    static func waitsForMore(afterGroupOf size: Int, window: Duration) -> Bool {
        window > .zero && size < smallGroup
    }

    /// The sequence number of the oldest row not yet committed or spilled (`Int.max`: none).
    private func firstNotDurable() -> Int {
        pending.withLock { p in
            if let first = p.inFlightFirst { return first }
            return p.rows.first.map { Self.sequence(of: $0.id) } ?? .max
        }
    }

    /// The sequence number in a row id `<run>-<sequence>`.
    static func sequence(of id: String) -> Int {
        id.lastIndex(of: "-").flatMap { Int(id[id.index(after: $0)...]) } ?? 0
    }

    /// Rows wait for the writer up to `pendingCapacity`; the rest spill to disk now.
    private func handToWriter(_ rows: [GuestbookRow]) {
        let capacity = configuration.pendingCapacity
        let (overflow, batchWaiting) = pending.withLock { p -> (ArraySlice<GuestbookRow>, Bool) in
            let room = max(0, capacity - p.count)
            p.rows.append(contentsOf: rows.prefix(room))
            counters.pending(p.count)
            return (rows.dropFirst(room), p.rows.count >= configuration.batchSize)
        }
        if !overflow.isEmpty { spillRows(Array(overflow)) }
        // Less than a batch waits for the writer's beat (`commitInterval`): a transaction
        // per group would cost more than the rows.
        if batchWaiting || !overflow.isEmpty { writerWake.yield() }
    }

    private func spillRows(_ rows: [GuestbookRow]) {
        do {
            try spill.append(rows)
            counters.add(.spilled, rows.count)
        } catch {
            counters.add(.dropped, rows.count)
            logger.critical("could not spill guestbook rows to disk; they are lost from the guestbook (their calls are in the capsule)",
                            metadata: ["rows": "\(rows.count)", "error": "\(error)"])
        }
    }

    // MARK: The writer

    private func runWriter() async {
        var nextRetention = ContinuousClock.now
        for await _ in writerSignals {
            if pending.withLock({ $0.stopping }) { break }
            var healthy = await commitPending()
            if healthy, spill.hasFiles { healthy = await replaySpill() }
            if healthy, let retention = configuration.retention, ContinuousClock.now >= nextRetention {
                nextRetention = .now + configuration.retentionCheckInterval
                do {
                    let removed = try await guestbook.deleteOlder(than: Date().addingTimeInterval(-retention.seconds))
                    if removed > 0 { logger.info("removed calls past the retention", metadata: ["rows": "\(removed)"]) }
                } catch {
                    logger.warning("could not remove old calls", metadata: ["error": "\(error)"])
                }
            }
            if !healthy {
                try? await Task.sleep(for: configuration.retryInterval)
                writerWake.yield()
            }
        }
        // Shutdown: commit what is waiting while the database answers, spill the rest.
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        while ContinuousClock.now < deadline, pending.withLock({ $0.count > 0 }) {
            if !(await commitPending()) { break }
        }
        let rest = pending.withLock { p -> [GuestbookRow] in
            defer { p.rows = [] }
            return p.rows
        }
        if !rest.isEmpty {
            logger.warning("the database did not take every row before shutdown; spilled them for the next start",
                           metadata: ["rows": "\(rest.count)"])
            spillRows(rest)
        }
    }

    /// Commits waiting rows in batches; false when the database failed (the rows wait again).
    private func commitPending() async -> Bool {
        let batchSize = configuration.batchSize
        while true {
            let batch = pending.withLock { p -> [GuestbookRow]? in
                guard p.inFlight == 0, !p.rows.isEmpty else { return nil }
                let n = min(batchSize, p.rows.count)
                let batch = Array(p.rows.prefix(n))
                p.rows.removeFirst(n)
                p.inFlight = n
                p.inFlightFirst = Self.sequence(of: batch[0].id)
                return batch
            }
            guard let batch else { return true }
            do {
                try await guestbook.insert(batch)
                pending.withLock { p in
                    p.inFlight = 0
                    p.inFlightFirst = nil
                    counters.pending(p.count)
                }
                counters.add(.written, batch.count)
                noteHealthy()
            } catch {
                pending.withLock { p in
                    p.rows.insert(contentsOf: batch, at: 0)
                    p.inFlight = 0
                    p.inFlightFirst = nil
                }
                noteFailure(error)
                return false
            }
        }
    }

    /// Replays spill files, oldest first; false when the database failed. Past `deadline` it
    /// stops between batches (a file cut short is replayed whole next time: inserts of rows
    /// already in the guestbook change nothing).
    private func replaySpill(until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        for file in spill.closedFiles() {
            let rows: [GuestbookRow]
            do {
                rows = try SpillJournal.rows(of: file)
            } catch {
                logger.error("a spill file cannot be read; moved aside", metadata: ["file": "\(file)", "error": "\(error)"])
                try? FileManager.default.moveItem(atPath: file, toPath: file + ".unreadable")
                continue
            }
            var start = 0
            while start < rows.count {
                if let deadline, ContinuousClock.now >= deadline {
                    spill.markDirty()  // the writer takes it from here
                    logger.notice("spilled calls are still being replayed into the guestbook; serving meanwhile",
                                  metadata: ["file": "\(file)"])
                    return true
                }
                let chunk = Array(rows[start..<min(rows.count, start + configuration.batchSize)])
                do {
                    try await guestbook.insert(chunk)
                } catch {
                    spill.markDirty()
                    noteFailure(error)
                    return false
                }
                start += chunk.count
                // New calls' rows go first: replay yields between batches.
                if pending.withLock({ $0.count > 0 }), !(await commitPending()) {
                    spill.markDirty()
                    return false
                }
            }
            // Counted before the file goes, so "no spill file left" implies the count is complete.
            counters.add(.replayed, rows.count)
            try? FileManager.default.removeItem(atPath: file)
            logger.info("replayed spilled calls into the guestbook", metadata: ["rows": "\(rows.count)"])
        }
        return true
    }

    private func noteFailure(_ error: any Error) {
        let first = pending.withLock { p -> Bool in
            defer { p.failing = true }
            return !p.failing
        }
        if first {
            logger.warning("the request log database is failing; calls wait in memory, then spill to disk", metadata: [
                "database": "\(guestbook.location)", "error": "\(error)",
            ])
        }
    }

    private func noteHealthy() {
        let recovered = pending.withLock { p -> Bool in
            defer { p.failing = false }
            return p.failing
        }
        if recovered { logger.notice("the request log database answers again", metadata: ["database": "\(guestbook.location)"]) }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The appender's thread, and a way to await what it returns when it ends.
final class AppenderThread: Sendable {
    private let result = Mutex<[RequestLog.SealedFile]?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func start(nice: Int32, _ body: @escaping @Sendable () -> [RequestLog.SealedFile]) {
        let thread = Thread { [self] in
            makeThisThreadBackground(named: "loupe-appender", nice: nice)
            let sealed = body()
            result.withLock { $0 = sealed }
            done.signal()
        }
        thread.start()
    }

    /// Waits (without holding a cooperative thread) for the loop to end; returns its result.
    func finished() async -> [RequestLog.SealedFile] {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [done] in
                done.wait()
                continuation.resume()
            }
        }
        return result.withLock { $0 ?? [] }
    }
}
