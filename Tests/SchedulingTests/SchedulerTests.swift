import ArtifactStore
import Catalog
import DiamondSchema
import Foundation
import LoupeTestKit
import Retraining
import Testing
import TreeTraining
@testable import Scheduling

@Suite(.serialized) struct SchedulerTests {
    static let quick = TrainingConfiguration(
        rounds: 15, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
        calibrationFraction: 0.2, threads: 1)

    static func csv(rows: Int, seed: Int = 0) -> String {
        SyntheticDiamonds.csv(rows: rows, seed: seed, mixedCuts: false, roundedCarats: true)
    }

    struct Setup {
        let url: URL
        let catalog: Catalog
        let jobs: JobManager
        var inbox: String { url.path + "/inbox" }
    }

    func setup(withModel: Bool = true) throws -> Setup {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-sched-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Array(Self.csv(rows: 600).utf8), dataset: "diamonds", source: "test")
        let jobs = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        if withModel {
            let outcome = try RetrainPipeline(catalog: catalog).run(RetrainRequest(configuration: Self.quick))
            #expect(outcome.promoted)
        }
        return Setup(url: url, catalog: catalog, jobs: jobs)
    }

    func config(_ change: (inout SchedulerConfiguration) -> Void = { _ in }) -> SchedulerConfiguration {
        var c = SchedulerConfiguration(
            interval: nil, inbox: false, driftThreshold: nil, minimumGap: .seconds(60), initialBackoff: .seconds(30),
            inboxSettle: .zero, request: RetrainRequest(configuration: Self.quick, requestedBy: "scheduler"))
        change(&c)
        return c
    }

    /// Ticks until the scheduler's job has finished.
    func settle(_ scheduler: Scheduler, jobs: JobManager, at now: Date) async throws {
        if let running = scheduler.status.running { _ = await jobs.wait(running) }
        scheduler.tick(now: now)
    }

    @Test func intervalTriggerRespectsTheIntervalAndTheGap() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        let scheduler = Scheduler(
            configuration: config { $0.interval = .seconds(3600) }, catalog: s.catalog, jobs: s.jobs,
            inboxDirectory: nil, now: t0)
        scheduler.tick(now: t0.addingTimeInterval(100))
        #expect(scheduler.status.running == nil)
        scheduler.tick(now: t0.addingTimeInterval(3600))
        let job = try #require(scheduler.status.running)
        #expect(scheduler.status.lastRun?.trigger == "interval")
        // While it runs, nothing else starts.
        scheduler.tick(now: t0.addingTimeInterval(3601))
        #expect(scheduler.status.running == job)
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(3700))
        #expect(scheduler.status.running == nil)
        #expect(scheduler.status.lastRun?.result?.contains("holdout RMSE") == true)
        #expect(scheduler.status.nextIntervalRun == t0.addingTimeInterval(7200))
        // The saved status is what `loupe status` shows.
        #expect(try s.catalog.schedulerStatus()?.lastRun?.job == job)
    }

    /// A store that cannot be written is not the file's fault: the file waits in the inbox and
    /// is taken at a later check, instead of moving to failed/.
    @Test func anInboxFileWaitsWhileTheStoreIsUnreachable() async throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-sched-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let backend = try UnreachableBackend(root: url.appendingPathComponent("store").path)
        let catalog = Catalog(store: try ArtifactStore(backend: backend))
        try catalog.ingest(csv: Array(Self.csv(rows: 300).utf8), dataset: "diamonds", source: "test")
        let inbox = url.appendingPathComponent("inbox").path
        let t0 = Date()
        let jobs = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        let scheduler = Scheduler(
            configuration: config { $0.inbox = true }, catalog: catalog, jobs: jobs, inboxDirectory: inbox, now: t0)
        try Self.csv(rows: 200, seed: 4).write(toFile: inbox + "/december.csv", atomically: true, encoding: .utf8)
        backend.down.store(true, ordering: .relaxed)
        scheduler.tick(now: t0.addingTimeInterval(10))
        #expect(scheduler.status.inboxProcessed == 0 && scheduler.status.inboxFailed == 0)
        #expect(FileManager.default.fileExists(atPath: inbox + "/december.csv"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: inbox + "/failed").isEmpty)
        backend.down.store(false, ordering: .relaxed)
        scheduler.tick(now: t0.addingTimeInterval(20))
        #expect(scheduler.status.inboxProcessed == 1)
        #expect(try catalog.store.latestDataset(name: "diamonds")?.version == 2)
        try await settle(scheduler, jobs: jobs, at: t0.addingTimeInterval(30))  // the retrain it started
    }

    @Test func inboxFilesAreIngestedMovedAndTriggerARetrain() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date()
        let scheduler = Scheduler(
            configuration: config { $0.inbox = true }, catalog: s.catalog, jobs: s.jobs,
            inboxDirectory: s.inbox, now: t0)
        try Self.csv(rows: 300, seed: 3).write(toFile: s.inbox + "/november.csv", atomically: true, encoding: .utf8)
        try "not,a,diamond,file\n1,2,3,4\n".write(toFile: s.inbox + "/broken.csv", atomically: true, encoding: .utf8)
        scheduler.tick(now: t0.addingTimeInterval(10))
        #expect(scheduler.status.inboxProcessed == 1)
        #expect(scheduler.status.inboxFailed == 1)
        #expect(scheduler.status.lastRun?.trigger == "inbox")
        let processed = try FileManager.default.contentsOfDirectory(atPath: s.inbox + "/processed")
        let failed = try FileManager.default.contentsOfDirectory(atPath: s.inbox + "/failed")
        #expect(processed.count == 1 && processed[0].hasSuffix("november.csv"))
        #expect(failed.contains { $0.hasSuffix("broken.csv") } && failed.contains { $0.hasSuffix(".error.txt") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.inbox).filter { $0.hasSuffix(".csv") }.isEmpty)
        #expect(try s.catalog.store.latestDataset(name: "diamonds")?.version == 2)
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(20))
        #expect(scheduler.status.lastRun?.finished != nil)
    }

    @Test func driftOnShiftedInputsTriggersAndSteadyInputsDoNot() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date()
        let scheduler = Scheduler(
            configuration: config { $0.driftThreshold = 0.2; $0.driftMinimumRows = 200 }, catalog: s.catalog,
            jobs: s.jobs, inboxDirectory: nil, now: t0)
        let same = try s.catalog.table(of: try s.catalog.latestDataset())
        scheduler.window.add(columns: same.columns)
        scheduler.tick(now: t0.addingTimeInterval(1))
        #expect(scheduler.status.running == nil)
        #expect((scheduler.status.drift["carat"] ?? 1) < 0.2)
        // Bigger stones than the model ever saw.
        var shifted = same.columns
        shifted[Feature.carat.rawValue] = shifted[Feature.carat.rawValue].map { $0 * 2 }
        scheduler.window.clear()
        scheduler.window.add(columns: shifted)
        // No labelled rows since production's dataset: a retrain could not follow the drift, so
        // it is reported as needing labels instead.
        scheduler.tick(now: t0.addingTimeInterval(2))
        #expect(scheduler.status.running == nil && scheduler.status.lastRun == nil)
        #expect(scheduler.status.driftNeedsLabels?.contains("no labelled rows") == true)
        // Sold prices arrive: the drift now starts a retrain.
        try s.catalog.ingest(csv: Array(Self.csv(rows: 300, seed: 5).utf8), dataset: "diamonds", source: "sold", append: true)
        scheduler.tick(now: t0.addingTimeInterval(3))
        #expect(scheduler.status.lastRun?.trigger.hasPrefix("drift (carat PSI") == true)
        #expect(scheduler.status.driftNeedsLabels == nil)
        #expect(scheduler.window.count == 0)  // a new model starts from fresh inputs
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(4))
    }

    @Test func oneStoneRepeatedIsNotDrift() throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date()
        let scheduler = Scheduler(
            configuration: config { $0.driftThreshold = 0.2; $0.driftMinimumRows = 200 }, catalog: s.catalog,
            jobs: s.jobs, inboxDirectory: nil, now: t0)
        // A partner prices one large stone 1,000 times.
        let stone = try s.catalog.table(of: try s.catalog.latestDataset()).columns.map { [$0[0] * 3] }
        for _ in 0..<1000 { scheduler.window.add(columns: stone) }
        scheduler.tick(now: t0.addingTimeInterval(1))
        #expect(scheduler.status.driftRows == 1)
        #expect(scheduler.status.drift.isEmpty && scheduler.status.driftNeedsLabels == nil)
        #expect(scheduler.status.running == nil)
    }

    @Test func combinedInputsReadEverySource() {
        let predicts = DriftWindow()
        let batches = DriftWindow()
        predicts.add(columns: (0..<Feature.count).map { [Double($0)] })
        batches.add(columns: (0..<Feature.count).map { [Double($0), Double($0) + 1] })
        let both = CombinedDriftInputs([predicts, batches])
        #expect(both.count == 3 && both.snapshot()[2] == [2, 2, 3])
        both.clear()
        #expect(predicts.count == 0 && batches.count == 0)
    }

    @Test func failuresBackOffAndRetry() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date(timeIntervalSince1970: 2_000_000)
        var request = RetrainRequest(dataset: "no-such-dataset", configuration: Self.quick)
        request.requestedBy = "scheduler"
        let scheduler = Scheduler(
            configuration: config { $0.interval = .seconds(10); $0.minimumGap = .zero; $0.request = request },
            catalog: s.catalog, jobs: s.jobs, inboxDirectory: nil, now: t0)
        scheduler.tick(now: t0.addingTimeInterval(10))
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(11))
        #expect(scheduler.status.consecutiveFailures == 1)
        #expect(scheduler.status.lastRun?.error?.contains("no-such-dataset") == true)
        #expect(scheduler.status.nextRetry == t0.addingTimeInterval(41))
        scheduler.tick(now: t0.addingTimeInterval(30))  // inside the backoff
        #expect(scheduler.status.running == nil)
        scheduler.tick(now: t0.addingTimeInterval(41))
        #expect(scheduler.status.running != nil)
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(42))
        #expect(scheduler.status.consecutiveFailures == 2)
        #expect(scheduler.status.nextRetry == t0.addingTimeInterval(42 + 60))
    }

    @Test func aWorseChallengerIsNeverPromoted() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.url) }
        let t0 = Date(timeIntervalSince1970: 3_000_000)
        let poor = TrainingConfiguration(rounds: 2, learningRate: 0.05, numLeaves: 2, minDataInLeaf: 5,
                                         earlyStoppingRounds: 0, calibrationFraction: 0.2, threads: 1)
        let scheduler = Scheduler(
            configuration: config { $0.interval = .seconds(1); $0.request = RetrainRequest(configuration: poor) },
            catalog: s.catalog, jobs: s.jobs, inboxDirectory: nil, now: t0)
        scheduler.tick(now: t0.addingTimeInterval(1))
        try await settle(scheduler, jobs: s.jobs, at: t0.addingTimeInterval(2))
        #expect(scheduler.status.lastRun?.promoted == false)
        #expect(try s.catalog.store.aliases(name: "diamonds").production == 1)
    }
}
