import ArtifactStore
import Catalog
import Foundation
import HyperTuning
import LoupeTestKit
import Retraining
import Testing
import TreeTraining
@testable import Reports

@Suite(.serialized) struct ReportPageTests {
    static func csv(rows: Int) -> [UInt8] {
        let quarantined = "0.5,Ideal,E,SI1,61.5,55,-3,5.1,5.1,3.14\n"  // one quarantined row
        return Array((SyntheticDiamonds.csv(rows: rows, mixedCuts: false) + quarantined).utf8)
    }

    /// A store whose v2 came from a tuned retrain against a v1 champion: every section has data.
    static func store() throws -> (Catalog, URL, ModelManifest) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-report-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: csv(rows: 700), dataset: "diamonds", source: "test.csv")
        let quick = TrainingConfiguration(rounds: 20, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5,
                                          earlyStoppingRounds: 5, calibrationFraction: 0.2, threads: 1)
        let pipeline = RetrainPipeline(catalog: catalog)
        _ = try pipeline.run(RetrainRequest(configuration: quick))
        let budget = TuningConfiguration(maxTrials: 4, timeBudgetSeconds: nil, startupTrials: 4, parallelTrials: 2,
                                         threads: 2, maxRounds: 40, earlyStoppingRounds: 5, rungMinRounds: 10)
        let outcome = try pipeline.run(RetrainRequest(tuning: budget, promotionMargin: 0))
        return (catalog, url, try catalog.store.model(name: "diamonds", version: try #require(outcome.challengerVersion)))
    }

    @Test func pageHasEverySectionAndNeedsNoNetwork() throws {
        let (catalog, url, manifest) = try Self.store()
        defer { try? FileManager.default.removeItem(at: url) }
        let html = try ModelReportPage(catalog: catalog).page(for: manifest)
        for chart in ["learning-curves", "predicted-vs-actual", "error-by-decile", "coverage-by-decile",
                      "feature-importance", "tuning-history"] {
            #expect(html.contains("data-chart=\"\(chart)\""), "\(chart)")
        }
        for heading in ["Holdout metrics", "Learning curves", "Predicted vs actual", "By price decile",
                        "Feature importance", "Cleaning", "Tuning history", "Champion vs challenger"] {
            #expect(html.contains("<h2>\(heading)"), "\(heading)")
        }
        #expect(html.contains("price_positive"))  // the quarantined row's rule
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"))
        // Stored with the model: served again from the store, and kept by gc.
        #expect(try catalog.store.attachment(kind: ModelReportPage.recordKind, id: "diamonds-\(manifest.version)") != nil)
        #expect(try ModelReportPage(catalog: catalog).page(for: manifest) == html)
        let gc = try catalog.store.gc(gracePeriod: .zero, dryRun: true)
        #expect(gc.collected.isEmpty)
        #expect(try catalog.store.verify().ok)
    }

    /// `loupe serve` renders and stores a promoted version's page as soon as it is promoted: the
    /// page must already hold the champion-vs-challenger section (it is stored, never redone).
    @Test func aPageRenderedOnPromotionHoldsTheComparison() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Self.csv(rows: 700), dataset: "diamonds", source: "test.csv")
        let quick = TrainingConfiguration(rounds: 20, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5,
                                          earlyStoppingRounds: 5, calibrationFraction: 0.2, threads: 1)
        let pipeline = RetrainPipeline(catalog: catalog) { manifest, _ in
            _ = try? ModelReportPage(catalog: catalog).page(for: manifest)
        }
        _ = try pipeline.run(RetrainRequest(configuration: quick))
        var second = quick
        second.rounds = 30
        let outcome = try pipeline.run(RetrainRequest(configuration: second, promotionMargin: 0))
        #expect(outcome.promoted, "\(outcome.reason)")
        let manifest = try catalog.store.model(name: "diamonds", version: try #require(outcome.challengerVersion))
        #expect(try ModelReportPage(catalog: catalog).page(for: manifest).contains("<h2>Champion vs challenger"))
    }

    @Test func pageLoadsInAHeadlessBrowserWithEveryChartDrawn() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("chromium is not installed on CI (scripts/install-deps should install it)")
            } else {
                print("⚠️  SKIPPED the browser test of the report page: no chromium (apt-get install chromium)")
            }
            return
        }
        let (catalog, url, manifest) = try Self.store()
        defer { try? FileManager.default.removeItem(at: url) }
        let file = url.appendingPathComponent("report.html")
        try ModelReportPage(catalog: catalog).page(for: manifest).write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--user-data-dir=\(url.path)/chrome", "--virtual-time-budget=2000", "--dump-dom", file.absoluteString]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // The page's self-check writes its verdict on the <html> element.
        let root = dom.firstMatch(of: /<html[^>]*>/).map { String($0.0) } ?? ""
        #expect(root.contains("data-check=\"ok\""), "\(root)")
        #expect(!root.contains("data-errors"), "\(root)")
    }
}
