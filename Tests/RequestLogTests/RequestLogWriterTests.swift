import ArtifactStore
import LoupeTestKit
import Foundation
import GRDB
import PostgresNIO
@testable import RequestLog
import Testing

extension RequestLogSuites {
    /// The writer off the serving path: group commit, a slow or absent database, spill and replay,
    /// shutdown flush. The invariant everywhere: sent = written + spilled, exactly, and every
    /// spilled row is replayed once the database answers.
    @Suite struct RequestLogWriterTests {
        func makeLog(_ book: any Guestbook, scratch: Scratch, capacity: Int = 10_000, segmentBytes: Int = 64 << 20)
            throws -> RequestLog
        {
            try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, segmentMaxBytes: segmentBytes, pendingCapacity: capacity, batchSize: 50,
                    syncAppends: false, retryInterval: .milliseconds(50), shutdownTimeout: .seconds(2)),
                guestbook: book, store: scratch.store)
        }

        /// After an outage or a lock: every call is written or spilled, every spilled row
        /// replayed, none dropped, and the database holds them all.
        func expectEverythingRecorded(_ log: RequestLog, in book: any Guestbook, sent: Int) async throws {
            #expect(await log.flush(timeout: patience))
            #expect(await log.waitForReplay(timeout: patience))
            let counts = log.counts
            #expect(counts.written + counts.spilled == sent && counts.replayed == counts.spilled && counts.dropped == 0)
            #expect(try await book.count() == sent)
        }

        var sideLogger: Logger { Logger(label: "test.side-connection") }

        /// A connection of its own to the test server's `postgres` database (to lock a table,
        /// create a database) beside the guestbook's pool.
        func sideConnection(to url: String, id: Int) async throws -> PostgresConnection {
            let parts = try #require(URLComponents(string: url))
            var configuration = PostgresConnection.Configuration(
                host: try #require(parts.host), port: try #require(parts.port), username: try #require(parts.user),
                password: nil, database: "postgres", tls: .disable)
            configuration.options.connectTimeout = .seconds(5)
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: sideLogger)
        }

        /// The counters once every call handed over is written, spilled or waiting in memory for
        /// the database (the appender has caught up); waits for that state, never for a time.
        func settled(_ log: RequestLog, _ sent: Int) async -> RequestLogCounts {
            for _ in 0..<60_000 {
                let c = log.counts
                if c.written + c.spilled + c.pending == sent { return c }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return log.counts
        }

        /// With a group wait, calls still all arrive, in groups (fewer database batches than calls).
        @Test func aGroupWaitLosesNothing() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let log = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, syncAppends: false, groupWindow: .milliseconds(20)),
                guestbook: book, store: scratch.store)
            try await log.start()
            for i in 0..<200 { log.record(try predictCall(i)) }
            #expect(await log.flush(timeout: patience))
            #expect(log.counts.written == 200 && log.counts.dropped == 0)
            #expect(try await book.rows(GuestbookQuery(limit: 1000)).count == 200)
            await log.shutdown()
        }

        /// While calls keep coming the appender drains them on its own beat: only the first call
        /// of a stream wakes it (a futex call on the serving path), not one per group.
        @Test func callsWakeTheAppenderOnlyWhenItIsIdle() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let probe = AppenderProbe()
            let log = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, syncAppends: false, groupWindow: .milliseconds(500),
                    backgroundNice: 0),
                guestbook: book, store: scratch.store, hooks: probe.hooks)
            try await log.start()
            // 40 calls 10 ms apart, a few groups. Waking per call would be 40 signals; only a pause
            // of the test longer than the 500 ms window lets the appender go idle between calls.
            // (A 50 ms window failed at load 16: the machine's pauses were longer than it.)
            for i in 0..<40 {
                log.record(try predictCall(i))
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await log.flush(timeout: patience))
            #expect(log.counts.written == 40)
            #expect(probe.wakeUps <= 4, "woken \(probe.wakeUps) times")
            await log.shutdown()
        }

        /// An appender at its low priority left behind (here: held) is caught up by a thread at
        /// normal priority once the oldest waiting call is older than the lag bound; without the
        /// bound nothing moves. Either way nothing is lost or written twice.
        @Test(arguments: [true, false]) func aLaggingAppenderIsCaughtUp(bounded: Bool) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let probe = AppenderProbe()
            probe.hold(true)  // before its thread starts: no round slips through
            let log = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, syncAppends: false, backgroundNice: 10,
                    maxAppendLag: bounded ? .milliseconds(20) : nil),
                guestbook: book, store: scratch.store, hooks: probe.hooks)
            try await log.start()
            for i in 0..<30 {
                log.record(try predictCall(i))
                try await Task.sleep(for: .milliseconds(2))
            }
            // The oldest waiting call is now well past 20 ms: the next hand-off calls for help.
            try await Task.sleep(for: .milliseconds(50))
            log.record(try predictCall(30))
            let deadline = ContinuousClock.now + patience
            while bounded, log.appendedCalls < 30, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            if bounded {
                #expect(log.appendedCalls >= 30 && log.catchUps >= 1, "appended \(log.appendedCalls), catch-ups \(log.catchUps)")
            } else {
                try await Task.sleep(for: .milliseconds(200))
                #expect(log.appendedCalls == 0 && log.catchUps == 0)
            }
            probe.hold(false)
            #expect(await log.flush(timeout: patience))
            // Each call appended once (the sequence counts appends), each row once.
            #expect(log.counts.written == 31 && log.appendedCalls == 31)
            let rows = try await book.rows(GuestbookQuery(limit: 100))
            #expect(rows.count == 31 && Set(rows.map(\.requestID)).count == 31)
            await log.shutdown()
        }

        @Test func theAppenderWaitsOnlyAfterASmallGroup() {
            #expect(Appender.waitsForMore(afterGroupOf: 0, window: .milliseconds(2)))
            #expect(Appender.waitsForMore(afterGroupOf: Appender.smallGroup - 1, window: .milliseconds(2)))
            #expect(!Appender.waitsForMore(afterGroupOf: Appender.smallGroup, window: .milliseconds(2)))
            #expect(!Appender.waitsForMore(afterGroupOf: 0, window: .zero))
        }

        /// A long stretch of background work gives the core away every quantum; a thread at
        /// normal priority never does.
        @Test func backgroundWorkGivesWayEveryQuantum() {
            func spin(_ yielder: inout PeriodicYield, until done: (PeriodicYield) -> Bool) {
                let end = ContinuousClock.now + .seconds(1)
                while !done(yielder), ContinuousClock.now < end { yielder.checkpoint() }
            }
            var background = PeriodicYield(enabled: true)
            spin(&background) { $0.yields >= 3 }
            #expect(background.yields >= 3)
            var serving = PeriodicYield(enabled: false)
            let start = ContinuousClock.now
            spin(&serving) { _ in ContinuousClock.now - start > PeriodicYield.quantum * 5 }
            #expect(serving.yields == 0)
        }

        /// Fewer rows than a batch wait for the writer's beat (their calls are in the payload archive
        /// already); a batch's worth is committed at once.
        @Test func lessThanABatchWaitsForTheCommitBeat() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let log = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, batchSize: 50, commitInterval: .seconds(600), syncAppends: false),
                guestbook: book, store: scratch.store)
            try await log.start()
            for i in 0..<10 { log.record(try predictCall(i)) }
            _ = await settled(log, 10)
            // An absence needs a while to show: a writer woken per group commits within ms.
            try await Task.sleep(for: .milliseconds(300))
            #expect(log.counts.written == 0 && log.counts.pending == 10)
            for i in 10..<60 { log.record(try predictCall(i)) }
            let deadline = ContinuousClock.now + patience
            while log.counts.written < 60, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(log.counts.written == 60 && log.counts.pending == 0)
            #expect(try await book.count() == 60)
            await log.shutdown()
        }

        /// The appender writes each group at once but hands its rows to the guestbook only at
        /// the segment's next fsync (every `syncInterval`; shutdown syncs what is left), so a row
        /// is in the guestbook only once its call is on disk.
        @Test func rowsWaitForTheSegmentsSync() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            // Rows are committed as soon as the writer has them: only the sync holds them back.
            func syncingLog(every interval: Duration, prefix: String = freshPrefix()) async throws -> RequestLog {
                try RequestLog(
                    configuration: RequestLogConfiguration(
                        archiveDirectory: scratch.archive, batchSize: 1, commitInterval: .milliseconds(1),
                        syncInterval: interval),
                    guestbook: try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix)),
                    store: scratch.store)
            }
            let prefix = freshPrefix()
            let log = try await syncingLog(every: .seconds(600), prefix: prefix)
            try await log.start()
            for i in 0..<5 { log.record(try predictCall(i)) }
            // Written to the open segment at once…
            let open = scratch.archive + "/open"
            let deadline = ContinuousClock.now + patience
            func appended() -> Int {
                let files = (try? FileManager.default.contentsOfDirectory(atPath: open)) ?? []
                return files.reduce(0) { total, name in
                    total + ((try? FileManager.default.attributesOfItem(atPath: open + "/" + name)[.size] as? Int) ?? 0)
                }
            }
            while appended() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(appended() > 0)
            // …but not in the guestbook before the sync (a writer handed rows per group commits within ms).
            try await Task.sleep(for: .milliseconds(300))
            #expect(log.counts.written == 0 && log.counts.pending == 0)
            await log.shutdown()
            #expect(log.counts.written == 5)
            let reopened = try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix))
            #expect(try await reopened.count() == 5)
            await reopened.close()

            // With a short interval the rows follow by themselves.
            let log2 = try await syncingLog(every: .milliseconds(20))
            try await log2.start()
            for i in 0..<5 { log2.record(try predictCall(i)) }
            while log2.counts.written < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(log2.counts.written == 5)
            await log2.shutdown()
        }

        /// The log's own threads run at the configured nice value (Linux keeps it per thread).
        @Test func backgroundThreadsRunAsBatchWorkAtTheirNiceValue() async throws {
            #if os(Linux)
            let worker = BackgroundWorker(name: "nice-test", nice: 7)
            defer { worker.stop() }
            let (nice, policy) = try await worker.perform { () -> (Int32, Int32) in
                errno = 0
                return (getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), sched_getscheduler(0))
            }
            #expect(nice == 7)
            #expect(policy == schedBatch)
            // Named, so `top -H` and `perf` tell the log's threads apart.
            let name = try await worker.perform { try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8) }
            #expect(name == "nice-test\n")
            // The calling (serving) thread is left as it was.
            #expect(sched_getscheduler(0) == SCHED_OTHER)
            #endif
        }

        @Test(arguments: Engine.allCases) func everyCallBecomesOneRowAndOneArchivedCall(engine: Engine) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            guard let book = try await makeGuestbook(engine, scratch: scratch) else { return }
            let log = try makeLog(book, scratch: scratch, segmentBytes: 4096)
            try await log.start()
            // In groups, so the appender sees the segment grow past its size between them.
            for group in 0..<10 {
                for i in group * 30..<(group + 1) * 30 { log.record(try predictCall(i, principal: i % 3 == 0 ? "bling" : "acme")) }
                #expect(await log.flush(timeout: patience))
            }
            let counts = log.counts
            #expect(counts.queued == 300 && counts.written == 300 && counts.spilled == 0 && counts.dropped == 0)
            #expect(try await book.count() == 300)
            let rows = try await book.rows(.init(principal: "bling", limit: 1000))
            #expect(rows.count == 100)
            #expect(rows.allSatisfy { $0.method == "Predict" && $0.modelName == "diamonds" && $0.modelVersion == 3 })
            #expect(rows.allSatisfy { $0.diamond?.clarity == "VS1" && $0.price != nil && $0.latencyMicroseconds == 250 })
            await log.shutdown()
            // Small segments: several were sealed, with an index each; together they hold every call.
            let segments = try PayloadArchiveReader.segments(store: scratch.store)
            #expect(segments.count > 1)
            #expect(segments.reduce(0) { $0 + $1.count } == 300)
            #expect(segments.allSatisfy { $0.principals == ["acme", "bling"] || $0.principals.count == 1 || $0.count < 3 })
            var exported: [ArchivedCall] = []
            let damage = try PayloadArchiveReader.export(store: scratch.store, directory: scratch.archive, from: nil, to: nil) {
                exported.append($0)
            }
            #expect(damage.isEmpty)
            #expect(exported.count == 300)
            #expect(Set(exported.map(\.row.id)).count == 300)
            #expect(exported.allSatisfy { !$0.request.isEmpty && !$0.response.isEmpty && !$0.responseIsError })
        }

        /// The store (S3 in a cluster) unreachable while the log runs: calls go on being
        /// recorded, finished segments wait on disk (still exported from there), and once the
        /// store answers they are sealed without a restart; nothing is lost or sealed twice.
        @Test func segmentsFinishedWhileTheStoreIsDownAreSealedWhenItAnswers() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let backend = try UnreachableBackend(root: scratch.url.appendingPathComponent("cut-store").path)
            let store = try ArtifactStore(backend: backend)
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let log = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, segmentMaxBytes: 4096, batchSize: 50, syncAppends: false,
                    retryInterval: .milliseconds(50), shutdownTimeout: .seconds(2)),
                guestbook: book, store: store)
            try await log.start()
            func send(_ range: Range<Int>) async throws {
                for group in stride(from: range.lowerBound, to: range.upperBound, by: 30) {
                    for i in group..<min(group + 30, range.upperBound) { log.record(try predictCall(i)) }
                    #expect(await log.flush(timeout: patience))
                }
            }
            try await send(0..<90)
            let before = try PayloadArchiveReader.segments(store: store).count
            #expect(before > 0)

            backend.down.store(true, ordering: .relaxed)
            try await send(90..<300)
            // Every call is in the guestbook; the finished segments wait in open/, still readable.
            #expect(try await book.count() == 300)
            #expect(try await eventually { backend.refused.load(ordering: .relaxed) > 0 })
            let open = scratch.archive + "/open"
            let waiting = try FileManager.default.contentsOfDirectory(atPath: open).filter { $0.hasSuffix(".seg") }
            #expect(waiting.count > 1, "finished segments stay on disk while the store is down")
            var exported = Set<String>()
            backend.down.store(false, ordering: .relaxed)
            defer { backend.down.store(false, ordering: .relaxed) }
            try PayloadArchiveReader.export(store: store, directory: scratch.archive, from: nil, to: nil) { exported.insert($0.row.id) }
            #expect(exported.count == 300)

            // The store answers: the sealer's next try seals them, in a few seconds at most.
            #expect(try await eventually {
                try PayloadArchiveReader.segments(store: store).reduce(0) { $0 + $1.count } >= 270
            })
            await log.shutdown()
            let segments = try PayloadArchiveReader.segments(store: store)
            #expect(segments.reduce(0) { $0 + $1.count } == 300)
            #expect(Set(segments.map(\.id)).count == segments.count)
            #expect(try FileManager.default.contentsOfDirectory(atPath: open).filter { $0.hasSuffix(".seg") }.isEmpty)
            exported.removeAll()
            try PayloadArchiveReader.export(store: store, directory: scratch.archive, from: nil, to: nil) { exported.insert($0.row.id) }
            #expect(exported.count == 300)
        }

        /// Shut down while the store is still unreachable: the unsealed segments stay on disk
        /// and the next start seals them.
        @Test func segmentsLeftUnsealedAtShutdownAreSealedByTheNextStart() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let backend = try UnreachableBackend(root: scratch.url.appendingPathComponent("cut-store").path)
            let store = try ArtifactStore(backend: backend)
            let prefix = freshPrefix()
            func makeCutLog() async throws -> RequestLog {
                try RequestLog(
                    configuration: RequestLogConfiguration(
                        archiveDirectory: scratch.archive, segmentMaxBytes: 4096, batchSize: 50, syncAppends: false,
                        retryInterval: .milliseconds(50), shutdownTimeout: .seconds(2)),
                    guestbook: try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix)), store: store)
            }
            let log = try await makeCutLog()
            try await log.start()
            backend.down.store(true, ordering: .relaxed)
            for group in 0..<5 {
                for i in group * 30..<(group + 1) * 30 { log.record(try predictCall(i)) }
                #expect(await log.flush(timeout: patience))
            }
            #expect(try await log.guestbook.count() == 150)
            await log.shutdown()
            #expect(!(try FileManager.default.contentsOfDirectory(atPath: scratch.archive + "/open").filter { $0.hasSuffix(".seg") }.isEmpty))
            #expect(try PayloadArchiveReader.segments(store: try ArtifactStore(backend: backend.base)).isEmpty)

            backend.down.store(false, ordering: .relaxed)
            let next = try await makeCutLog()
            try await next.start()
            // Recovery replays the rows it read back; the guestbook ignores the ones it has.
            #expect(await next.waitForReplay(timeout: patience))
            #expect(try await next.guestbook.count() == 150)
            await next.shutdown()
            let segments = try PayloadArchiveReader.segments(store: store)
            #expect(segments.reduce(0) { $0 + $1.count } == 150)
        }

        @Test func anUnavailableDatabaseSpillsAndReplaysEverything() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let flaky = FlakyGuestbook(try #require(try await makeGuestbook(.sqlite, scratch: scratch)))
            let log = try makeLog(flaky, scratch: scratch, capacity: 100)
            try await log.start()
            for i in 0..<200 { log.record(try predictCall(i)) }
            #expect(await log.flush(timeout: patience))
            flaky.set(down: true)
            for i in 200..<1200 {
                log.record(try predictCall(i))
                if i % 100 == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
            // Down: rows wait (up to 100) and the rest spill; none is lost or counted twice.
            var counts = await settled(log, 1200)
            #expect(counts.spilled >= 900 - 100)
            #expect(counts.queued == counts.written + counts.spilled + counts.pending)
            flaky.set(down: false)
            #expect(await log.flush(timeout: patience))
            #expect(await log.waitForReplay(timeout: patience))
            counts = log.counts
            #expect(counts.queued == 1200 && counts.written + counts.spilled == 1200 && counts.dropped == 0)
            #expect(counts.replayed == counts.spilled)
            #expect(try await flaky.count() == 1200)
            await log.shutdown()
        }

        /// Records `calls` calls while the (SQLite) database is down and shuts the log down:
        /// every row ends in a spill file for the next start.
        func spillOnShutdown(_ calls: Int, scratch: Scratch, prefix: String) async throws -> RequestLog {
            let down = FlakyGuestbook(try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix)))
            down.set(down: true)
            let log = try makeLog(down, scratch: scratch)
            try await log.start()
            for i in 0..<calls { log.record(try predictCall(i)) }
            await log.shutdown()
            return log
        }

        @Test func shutdownWithTheDatabaseDownSpillsAndTheNextStartReplays() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let prefix = freshPrefix()
            let log = try await spillOnShutdown(500, scratch: scratch, prefix: prefix)
            let counts = log.counts
            #expect(counts.queued == 500 && counts.written == 0 && counts.spilled == 500)
            // Calls after shutdown are refused loudly (counted as dropped), not lost silently.
            log.record(try predictCall(999))
            #expect(log.counts.dropped == 1)

            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix))
            let next = try makeLog(book, scratch: scratch)
            try await next.start()
            #expect(await next.waitForReplay(timeout: patience))
            #expect(next.counts.replayed == 500)
            #expect(try await book.count() == 500)
            await next.shutdown()
        }

        @Test func aLargeSpillBacklogIsReplayedWhileServing() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let prefix = freshPrefix()
            let log = try await spillOnShutdown(500, scratch: scratch, prefix: prefix)
            #expect(log.counts.spilled == 500)

            // The next start may replay for no time at all: it must not wait for the backlog
            // (10 batches of 300 ms here) before taking calls; the writer replays it meanwhile.
            let slow = FlakyGuestbook(try #require(try await makeGuestbook(.sqlite, scratch: scratch, prefix: prefix)))
            slow.set(delay: .milliseconds(300))
            let next = try RequestLog(
                configuration: RequestLogConfiguration(
                    archiveDirectory: scratch.archive, batchSize: 50, syncAppends: false, retryInterval: .milliseconds(50),
                    shutdownTimeout: .seconds(2), startupReplayLimit: .zero),
                guestbook: slow, store: scratch.store)
            try await next.start()
            // A start that replayed the backlog would have made all 10 inserts by now.
            #expect(slow.inserts < 10)
            next.record(try predictCall(1000))
            #expect(await next.waitForReplay(timeout: patience))
            #expect(await next.flush(timeout: patience))
            #expect(next.counts.replayed == 500 && next.counts.written == 1)
            #expect(try await slow.count() == 501)
            await next.shutdown()
        }

        @Test func aSQLiteLockHeldByAnotherConnectionOnlyDelaysRows() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = scratch.url.appendingPathComponent("requests.sqlite").path
            let book = try SQLiteGuestbook(path: path, tablePrefix: "loupe_", busyTimeout: 0.2)
            let log = try makeLog(book, scratch: scratch, capacity: 150)
            try await log.start()
            // Another connection takes the write lock and sits on it.
            var lockerConfiguration = Configuration()
            lockerConfiguration.allowsUnsafeTransactions = true
            let other = try DatabaseQueue(path: path, configuration: lockerConfiguration)
            try await other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
            for i in 0..<800 {
                log.record(try predictCall(i))
                if i % 50 == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            let during = await settled(log, 800)
            #expect(during.spilled > 0)
            #expect(during.written + during.spilled + during.pending == 800)
            try await other.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            try await expectEverythingRecorded(log, in: book, sent: 800)
            await log.shutdown()
            try other.close()
        }

        /// A server's log starts while its PostgreSQL database is not there (as when the server
        /// restarts during a database outage): calls spill, and once the database answers the
        /// table is created and every row replayed.
        @Test func aPostgresDatabaseMissingAtStartIsFilledInOnceItAnswers() async throws {
            guard let url = try postgresTestURL() else { return }
            let scratch = try Scratch()
            defer { scratch.remove() }
            var parts = try #require(URLComponents(string: url))
            let database = "late" + UUID().uuidString.prefix(8).lowercased()
            parts.path = "/" + database
            let book = try await PostgresGuestbook(
                url: try #require(parts.string), operationTimeout: .milliseconds(500), waitForDatabase: false)
            let log = try makeLog(book, scratch: scratch, capacity: 20)
            try await log.start()
            for i in 0..<100 { log.record(try predictCall(i)) }
            let during = await settled(log, 100)
            #expect(during.written == 0 && during.spilled >= 80)
            await #expect(throws: RequestLogError.self) { try await book.count() }

            let admin = try await sideConnection(to: url, id: 2)
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: sideLogger)
            try await expectEverythingRecorded(log, in: book, sent: 100)
            await log.shutdown()
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(database) WITH (FORCE)"), logger: sideLogger)
            try await admin.close()
        }

        @Test func aPostgresTableLockOnlyDelaysRows() async throws {
            guard let url = try postgresTestURL() else { return }
            let scratch = try Scratch()
            defer { scratch.remove() }
            let prefix = freshPrefix()
            let book = try await PostgresGuestbook(url: url, tablePrefix: prefix, operationTimeout: .milliseconds(300))
            let log = try makeLog(book, scratch: scratch, capacity: 150)
            try await log.start()
            // Another session locks the table inside a transaction.
            let locker = try await sideConnection(to: url, id: 1)
            try await locker.query("BEGIN", logger: sideLogger)
            try await locker.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(prefix)requests IN ACCESS EXCLUSIVE MODE"),
                                   logger: sideLogger)
            for i in 0..<800 {
                log.record(try predictCall(i))
                if i % 50 == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            let during = await settled(log, 800)
            #expect(during.spilled > 0)
            #expect(during.written + during.spilled + during.pending == 800)
            try await locker.query("ROLLBACK", logger: sideLogger)
            try await locker.close()
            try await expectEverythingRecorded(log, in: book, sent: 800)
            await log.shutdown()
        }

        @Test func aSlowDatabaseLosesNothing() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let flaky = FlakyGuestbook(try #require(try await makeGuestbook(.sqlite, scratch: scratch)))
            flaky.set(delay: .seconds(1))
            let log = try makeLog(flaky, scratch: scratch, capacity: 100)
            try await log.start()
            // record() hands over and returns; rows past the bound spill while an insert sleeps.
            for i in 0..<400 { log.record(try predictCall(i)) }
            #expect(log.counts.queued == 400)
            flaky.set(delay: .zero)
            #expect(await log.flush(timeout: patience))
            #expect(await log.waitForReplay(timeout: patience))
            #expect(try await flaky.count() == 400)
            await log.shutdown()
        }
    }
}
