import Catalog
import Foundation
import LoupeTestKit
import Retraining
import Testing
import TreeTraining

/// `loupe jobs list|show` read the jobs a server recorded in the store, after it has gone.
@Suite struct JobsCLITests {
    @Test func jobsAreListedAndShownFromTheStore() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let catalog = try Catalog.open(at: dir.appendingPathComponent("loupe-store").path)
        try catalog.ingest(csv: Array(SyntheticDiamonds.csv(rows: 400).utf8), dataset: "diamonds", source: "test")
        let jobs = JobManager(pipeline: RetrainPipeline(catalog: catalog))
        let quick = TrainingConfiguration(
            rounds: 10, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
            calibrationFraction: 0.2, threads: 1)
        let id = jobs.start(RetrainRequest(configuration: quick, requestedBy: "ops"))
        #expect(await jobs.wait(id)?.stage == .done)

        let list = try await CLIRunner.run(["jobs", "list"], in: dir)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains(id) && list.stdout.contains("ops") && list.stdout.contains("promoted v1"), "\(list.stdout)")
        let show = try await CLIRunner.run(["jobs", "show", id], in: dir)
        #expect(show.status == 0 && show.stdout.contains("\"stage\" : \"done\""), "\(show.stdout)")
        // The model's lineage carries the decision that made it.
        let model = try await CLIRunner.run(["models", "show", "diamonds@1"], in: dir)
        #expect(model.status == 0 && model.stdout.contains("\"retrain\"") && model.stdout.contains("no production model yet"),
                "\(model.stdout)")
        let missing = try await CLIRunner.run(["jobs", "show", "job-nothing"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("no job \"job-nothing\""))
    }
}
