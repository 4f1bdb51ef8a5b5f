import DataCleaning
import DiamondSchema
import Testing
import TreeModel
import TreeTraining
@testable import ModelRuntime

@Suite struct SimilarityIndexTests {
    static func table(rows: Int, seed: UInt64) -> DiamondTable {
        var rng = SeededRandom(seed: seed)
        var table = DiamondTable()
        for row in 0..<rows {
            let carat = Double(20 + rng.below(200)) / 100
            let d = Diamond(
                carat: carat, cut: Cut(rawValue: UInt8(rng.below(2)))!, color: Color(rawValue: UInt8(rng.below(2)))!,
                clarity: Clarity(rawValue: UInt8(rng.below(2)))!, depth: 61.5, table: 57,
                x: 6.4 * carat.squareRoot(), y: 6.4 * carat.squareRoot(), z: 3.95 * carat.squareRoot())
            table.append(d, price: 1000 * carat, sourceRow: row + 1)
        }
        return table
    }

    @Test func matchesABruteForceScan() {
        let table = Self.table(rows: 3000, seed: 1)
        let index = SimilarityIndex(table: table)
        var rng = SeededRandom(seed: 2)
        for _ in 0..<200 {
            let query = table.diamond(at: rng.below(table.count))
            var probe = query
            probe.carat += Double(rng.below(21)) / 1000 - 0.01
            let found = index.nearest(to: probe, limit: 7)
            // The documented order: nearest carat first, ties (many stones share a carat here)
            // lower row first, on both sides of the query.
            let expected = (0..<table.count)
                .filter {
                    let d = table.diamond(at: $0)
                    return d.cut == probe.cut && d.color == probe.color && d.clarity == probe.clarity
                }
                .map { (distance: abs(table.diamond(at: $0).carat - probe.carat), row: $0) }
                .sorted { ($0.distance, $0.row) < ($1.distance, $1.row) }
                .prefix(7)
            #expect(found.map(\.caratDistance) == expected.map(\.distance))
            #expect(found.map(\.row) == expected.map(\.row))
            #expect(found.allSatisfy { $0.diamond.cut == probe.cut && $0.diamond.color == probe.color && $0.diamond.clarity == probe.clarity })
        }
    }

    @Test func unknownGroupAndLimits() {
        let index = SimilarityIndex(table: Self.table(rows: 100, seed: 3))
        let ideal = Diamond(carat: 1, cut: .ideal, color: .d, clarity: .internallyFlawless, depth: 61, table: 57, x: 6.4, y: 6.4, z: 3.9)
        #expect(index.nearest(to: ideal, limit: 5).isEmpty)  // no Ideal D IF in the table
        var fair = ideal
        fair.cut = .fair; fair.color = .j; fair.clarity = .i1
        #expect(index.nearest(to: fair, limit: 0).isEmpty)
        #expect(index.nearest(to: fair, limit: 1000).count < 100)
    }
}

@Suite struct ServingModelTests {
    static let model: Ensemble = {
        let data = SimilarityIndexTests.table(rows: 600, seed: 4)
        let config = TrainingConfiguration(rounds: 10, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
                                           calibrationFraction: 0.2, threads: 1)
        return try! Trainer(configuration: config).train(data).model
    }()

    @Test func batchScoresValidRowsAndReportsTheRest() {
        let serving = ServingModel(name: "diamonds", version: 3, ensemble: Self.model, trainingData: nil)
        let good = [0.9, 2, 3, 4, 61.5, 57, 6.1, 6.1, 3.75]
        var columns = good.map { [$0, $0, $0, $0] }
        columns[0][1] = -1  // carat
        columns[1][2] = 9  // cut code out of range
        columns[3][3] = 2.5  // clarity not an integer code
        let result = serving.predictBatch(columns: columns, level: 0.9)
        #expect(result.rows == [0])
        #expect(result.estimates.count == 1)
        #expect(result.problems.map(\.index) == [1, 2, 3])
        #expect(result.problems[0].reason.contains("carat must be > 0"))
        #expect(result.problems[0].field == "carat")
        #expect(result.problems[1].reason.contains("cut is missing or unknown"))
        #expect(result.problems[1].field == "cut")
        #expect(result.problems[2].reason.contains("clarity is missing or unknown"))
        let single = Self.model.estimate(raw: Self.model.rawScore(good), features: good, level: 0.9)
        #expect(result.estimates[0] == single)
    }

    @Test func singlePredictionValidates() {
        let serving = ServingModel(name: "diamonds", version: 1, ensemble: Self.model, trainingData: nil)
        let bad = Diamond(carat: 1, cut: .ideal, color: .g, clarity: .vs1, depth: 70, table: 57, x: 6.4, y: 6.4, z: 3.9)
        guard case .failure(let problem) = serving.predict(bad, level: 0.9) else {
            Issue.record("an inconsistent depth was priced")
            return
        }
        #expect(problem.reason.contains("does not match the dimensions"))
    }

    @Test func registrySwapKeepsInFlightModels() {
        let v1 = ServingModel(name: "diamonds", version: 1, ensemble: Self.model, trainingData: nil)
        let v2 = ServingModel(name: "diamonds", version: 2, ensemble: Self.model, trainingData: nil)
        let registry = ModelRegistry()
        #expect(registry.model == nil)
        registry.swap(to: v1)
        let held = registry.model  // a call in flight
        let old = registry.swap(to: v2)
        #expect(old === v1)
        #expect(held?.version == 1)
        #expect(registry.model?.version == 2)
        #expect(registry.swapCount == 2)
    }
}
