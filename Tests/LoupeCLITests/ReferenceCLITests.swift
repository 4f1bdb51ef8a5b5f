import Catalog
import Foundation
import LoupeTestKit
import Testing

/// `loupe reference show|refresh`: the reference set an operator looks at and renews.
@Suite struct ReferenceCLITests {
    @Test func showThenRefresh() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let catalog = try Catalog.open(at: dir.appendingPathComponent("loupe-store").path)
        try catalog.ingest(csv: Array(SyntheticDiamonds.csv(rows: 400).utf8), dataset: "diamonds", source: "test")
        let none = try await CLIRunner.run(["reference", "show"], in: dir)
        #expect(none.status == 0 && none.stdout.contains("no reference set for diamonds yet"), "\(none.stdout)\(none.stderr)")
        let refreshed = try await CLIRunner.run(["reference", "refresh", "--rows", "100"], in: dir)
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        let shown = try await CLIRunner.run(["reference", "show"], in: dir)
        #expect(shown.stdout.contains("diamonds-reference v1: 100 rows, refreshed from diamonds v1"), "\(shown.stdout)")
        let tooMany = try await CLIRunner.run(["reference", "refresh", "--rows", "300"], in: dir)
        #expect(tooMany.status != 0 && tooMany.stderr.contains("half or more"))
        // Training leaves the reference rows out.
        let everything = try catalog.table(of: try catalog.latestDataset())
        #expect(try catalog.trainingTable(everything, dataset: "diamonds").count == everything.count - 100)
    }
}
