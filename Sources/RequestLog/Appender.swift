import LoupeUtilities
import Dispatch
import Foundation
import Logging
import Synchronization

/// Moves calls from the inbox into the payload archive, in groups: appends each group to the
/// open segment (one write), fsyncs it every `syncInterval` and then hands the synced calls'
/// rows to the guestbook writer (so a row is in the guestbook only once its call is on disk),
/// rotates segments (the `SegmentSealer` seals them into the store), and forgets a sealed segment's local copy once its rows are
/// durable.
///
/// Its rounds run on the appender's own thread at a lower priority, and, when that thread lags
/// by more than `maxAppendLag`, on the catch-up thread at the process's priority
/// (`Appender+CatchUp.swift`): one round at a time, under `state`.
final class Appender: Sendable {
    /// A sealed segment's local copy, kept until every row up to `last` is durable.
    struct SealedFile: Sendable {
        var path: String
        var last: Int
    }

    /// What the rounds share, whichever thread runs them: the open segment, the row sequence,
    /// the calls written but not yet fsynced, the sealed segments' local copies.
    struct State {
        var archive: PayloadArchive?
        /// Puts finished segments into the store, off this thread.
        var sealer: SegmentSealer?
        var sequence = 0
        var sealed: [SealedFile] = []
        /// Written to the segment, not yet fsynced: their rows go to the writer at the next sync.
        var unsynced: [GuestbookRow] = []
        var lastSync = ContinuousClock.now
        /// The last segment is sealed: nothing more is appended.
        var finished = false
    }

    /// First in the lock order (`RequestLog`): held for a whole round, which takes
    /// `CallInbox.state`, `GuestbookWriter.pending` and `SpillJournal.state` inside it.
    let state = Mutex(State())
    let inbox: CallInbox
    let writer: GuestbookWriter
    let configuration: RequestLogConfiguration
    let counters: RequestLogCounters
    let logger: Logger
    let hooks: RequestLogHooks
    /// Wakes the catch-up thread (a call found the appender lagging, or shutdown).
    let catchUpWake = DispatchSemaphore(value: 0)

    init(
        configuration: RequestLogConfiguration, inbox: CallInbox, writer: GuestbookWriter, counters: RequestLogCounters,
        logger: Logger, hooks: RequestLogHooks
    ) {
        self.configuration = configuration
        self.inbox = inbox
        self.writer = writer
        self.counters = counters
        self.logger = logger
        self.hooks = hooks
    }

    /// Starts the appender thread on `archive`, and the catch-up thread when there is a lag
    /// bound. The returned thread ends once the inbox is closed and drained, with the sealed
    /// segments' local copies still kept.
    func start(archive: PayloadArchive) -> AppenderThread {
        let sealer = SegmentSealer(directory: archive.directory, store: archive.store, counters: counters, logger: logger)
        sealer.start(nice: configuration.backgroundNice)
        state.withLock { $0 = State(archive: archive, sealer: sealer) }
        let thread = AppenderThread()
        thread.start(nice: configuration.backgroundNice) { [self] in run() }
        if let lag = configuration.catchUpAfter { Thread { [self] in runCatchUp(after: lag) }.start() }
        return thread
    }

    /// Calls the catch-up thread (a call found the appender lagging), or ends it at shutdown.
    func callForHelp() { catchUpWake.signal() }

    /// How many calls were appended so far (by either thread).
    var appendedCalls: Int { state.withLock { $0.sequence } }

    /// A group smaller than this makes the appender wait `groupWindow` before the next one.
    static let smallGroup = 16

    /// Whether the appender, woken by a call, waits for more before appending: only after a
    /// small group. At a modest rate every call would otherwise be a group of its own, paying a
    /// `write` and an `fsync` (with a database transaction then, ~260 µs of CPU per call at
    /// 2,000 calls/s); under load groups are large by themselves and a wait would only make bursts.
    static func waitsForMore(afterGroupOf size: Int, window: Duration) -> Bool {
        window > .zero && size < smallGroup
    }

    /// The appender thread's loop: while calls come, drains them every `groupWindow`; when none
    /// came, sleeps until a call wakes it, a sync is due, or 250 ms pass (the segment's age).
    private func run() -> [SealedFile] {
        let window = configuration.groupWindow
        var lastGroup = 0
        var yielder = PeriodicYield(enabled: configuration.backgroundNice > 0)
        while true {
            if lastGroup > 0 {
                // Calls are coming: the flag stays set, so callers do not signal (no futex call on
                // the serving path while the log keeps up), and the appender drains on its own beat,
                // letting a small group fill for `window` first.
                if Self.waitsForMore(afterGroupOf: lastGroup, window: window), !inbox.isClosed {
                    Thread.sleep(forTimeInterval: window.seconds)
                }
            } else {
                // Idle: callers signal from now on. A call that came before the flag was cleared
                // did not signal, so look once more before sleeping.
                inbox.goingIdle()
                if inbox.isIdle {
                    // Wakes for calls, for the next sync when something waits for one, else every 250 ms.
                    let idle = Duration.milliseconds(250)
                    let (waiting, lastSync) = state.withLock { (!$0.unsynced.isEmpty, $0.lastSync) }
                    let nap = waiting ? min(idle, configuration.syncInterval - (.now - lastSync)) : idle
                    let woken = inbox.waitForCall(upTo: nap)
                    // The first call of a burst: let the group fill.
                    if woken, window > .zero, !inbox.isClosed { Thread.sleep(forTimeInterval: window.seconds) }
                }
            }
            // Asked right before the round: an appender woken while held must not append.
            while hooks.holdsAppender(), !inbox.isClosed {
                Thread.sleep(forTimeInterval: 0.001)
            }
            let (taken, closed) = state.withLock { round(&$0, yielder: &yielder) }
            lastGroup = taken
            if closed { break }
        }
        let sealer = state.withLock { state -> SegmentSealer? in
            state.finished = true
            do {
                if let last = try state.archive?.finishSegment() { state.sealer?.submit(last, last: state.sequence) }
            } catch {
                logger.error("could not close the last payload archive segment (it is sealed at the next start)",
                             metadata: ["error": "\(error)"])
            }
            state.archive = nil  // releases the archive's lock for the next log on this store
            return state.sealer
        }
        // Outside the lock: sealing may wait on the store.
        let sealed = sealer?.finish() ?? []
        return state.withLock { state in
            state.sealed += sealed
            return state.sealed
        }
    }

    /// One round: takes what waits in the inbox, appends it to the segment (one write), fsyncs
    /// when due and hands the synced calls' rows to the writer, rotates the segment when due,
    /// and forgets sealed segments' copies once their rows are durable. Returns how many calls
    /// it took and whether the log is closed.
    func round(_ state: inout State, yielder: inout PeriodicYield) -> (taken: Int, closed: Bool) {
        guard !state.finished, let archive = state.archive else { return (0, true) }
        let (batch, closed) = inbox.takeAll()
        if !batch.isEmpty {
            let runID = configuration.runID
            let rows = batch.map { call in
                state.sequence += 1
                return GuestbookRow(id: "\(runID)-\(state.sequence)", call: call)
            }
            do {
                try archive.append(batch, rows: rows) { yielder.checkpoint() }
                state.unsynced.append(contentsOf: rows)
            } catch {
                // The rows still reach the guestbook (in order, the unsynced ones first); only
                // the payloads are missing.
                logger.error("could not append to the payload archive", metadata: [
                    "calls": "\(rows.count)", "error": "\(error)",
                ])
                writer.hand(state.unsynced + rows)
                state.unsynced.removeAll(keepingCapacity: true)
            }
        }
        if !state.unsynced.isEmpty, closed || ContinuousClock.now - state.lastSync >= configuration.syncInterval {
            sync(archive)
            state.lastSync = .now
            writer.hand(state.unsynced)
            state.unsynced.removeAll(keepingCapacity: true)
        }
        do {
            if let finished = try archive.rotateIfDue() {
                state.sealer?.submit(finished, last: state.sequence)
                // Closing the segment synced it: its rows may go before its local copy is judged.
                writer.hand(state.unsynced)
                state.unsynced.removeAll(keepingCapacity: true)
            }
        } catch {
            logger.error("could not close a payload archive segment (it is sealed at the next start)",
                         metadata: ["error": "\(error)"])
        }
        if let sealed = state.sealer?.takeSealed(), !sealed.isEmpty { state.sealed += sealed }
        if !state.sealed.isEmpty {
            let durable = writer.firstNotDurable()
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
    private func sync(_ archive: PayloadArchive) {
        guard configuration.syncAppends else { return }
        do {
            try archive.sync()
        } catch {
            logger.error("could not fsync the payload archive segment", metadata: ["error": "\(error)"])
        }
    }
}
