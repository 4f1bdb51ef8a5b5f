import Foundation
import Logging
import Synchronization

/// Commits guestbook rows in batches, off the appender's thread: rows the appender hands over
/// wait here (up to `pendingCapacity`; the rest spill to disk at once) and are committed every
/// `commitInterval` or as soon as a batch is waiting. When the database fails or is slow, rows
/// wait and then spill; once it answers again the spill files are replayed into it
/// (`GuestbookWriter+Replay.swift`). Its loop (`run`) also applies the retention.
final class GuestbookWriter: Sendable {
    private struct Pending {
        var rows: [GuestbookRow] = []
        var inFlight = 0
        /// Sequence number of the first row of the batch being inserted.
        var inFlightFirst: Int?
        var stopping = false
        var failing = false
        var count: Int { rows.count + inFlight }
    }

    /// Third in the lock order (`RequestLog`): taken inside `Appender.state`; the spill
    /// journal is written after it is released.
    private let pending = Mutex(Pending())
    let guestbook: any Guestbook
    let spill: SpillJournal
    let counters: RequestLogCounters
    let configuration: RequestLogConfiguration
    let logger: Logger
    private let signals: AsyncStream<Void>
    private let wakeUps: AsyncStream<Void>.Continuation

    init(
        configuration: RequestLogConfiguration, guestbook: any Guestbook, spill: SpillJournal, counters: RequestLogCounters,
        logger: Logger
    ) {
        self.configuration = configuration
        self.guestbook = guestbook
        self.spill = spill
        self.counters = counters
        self.logger = logger
        // Wake-ups, not data: one pending signal is enough.
        let stream = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        signals = stream.stream
        wakeUps = stream.continuation
    }

    /// Makes the loop look at once (rows wait, a flush waits, or the beat).
    func wake() { wakeUps.yield() }

    /// Rows waiting for the database or being inserted.
    var pendingCount: Int { pending.withLock { $0.count } }

    /// Rows wait for the writer up to `pendingCapacity`; the rest spill to disk now.
    func hand(_ rows: [GuestbookRow]) {
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
        if batchWaiting || !overflow.isEmpty { wakeUps.yield() }
    }

    /// The sequence number of the oldest row not yet committed or spilled (`Int.max`: none).
    func firstNotDurable() -> Int {
        pending.withLock { p in
            if let first = p.inFlightFirst { return first }
            return p.rows.first.map { Self.sequence(of: $0.id) } ?? .max
        }
    }

    /// The sequence number in a row id `<run>-<sequence>`.
    static func sequence(of id: String) -> Int {
        id.lastIndex(of: "-").flatMap { Int(id[id.index(after: $0)...]) } ?? 0
    }

    /// The loop: at every wake-up commits waiting rows, replays spill files and applies the
    /// retention while the database answers; after `stop`, commits what waits while it
    /// answers (up to `shutdownTimeout`) and spills the rest.
    func run() async {
        var retention = configuration.retention.map {
            Retention(keep: $0, checkInterval: configuration.retentionCheckInterval)
        }
        for await _ in signals {
            if pending.withLock({ $0.stopping }) { break }
            var healthy = await commitPending()
            if healthy, spill.hasFiles { healthy = await replaySpill() }
            if healthy { await retention?.removeIfDue(from: guestbook, logger: logger) }
            if !healthy {
                try? await Task.sleep(for: configuration.retryInterval)
                wakeUps.yield()
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

    /// Ends the loop (everything handed over so far is committed or spilled first).
    func stop() {
        pending.withLock { $0.stopping = true }
        wakeUps.yield()
    }

    /// No more wake-ups (after the loop ended).
    func finish() { wakeUps.finish() }

    /// Commits waiting rows in batches; false when the database failed (the rows wait again).
    func commitPending() async -> Bool {
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

    private func spillRows(_ rows: [GuestbookRow]) {
        do {
            try spill.append(rows)
            counters.add(.spilled, rows.count)
        } catch {
            counters.add(.dropped, rows.count)
            logger.critical("could not spill guestbook rows to disk; they are lost from the guestbook (their calls are in the payload archive)",
                            metadata: ["rows": "\(rows.count)", "error": "\(error)"])
        }
    }

    func noteFailure(_ error: any Error) {
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
