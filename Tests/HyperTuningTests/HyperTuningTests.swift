import DataCleaning
import DiamondSchema
import Foundation
import Testing
import TreeTraining
@testable import HyperTuning

@Suite struct SearchSpaceTests {
    @Test func unitCoordinatesMapOntoRanges() {
        let real = SearchSpace.Dimension(.learningRate, .real(low: 0.01, high: 1, log: true))
        #expect(abs(real.value(at: 0) - 0.01) < 1e-12)
        #expect(abs(real.value(at: 1) - 1) < 1e-12)
        #expect(abs(real.value(at: 0.5) - 0.1) < 1e-12)
        let integer = SearchSpace.Dimension(.numLeaves, .integer(low: 2, high: 4, log: false))
        #expect([0, 0.2, 0.5, 0.8, 1].map { integer.value(at: $0) } == [2, 2, 3, 4, 4])
        let choice = SearchSpace.Dimension(.maxBin, .choice([63, 127, 255]))
        #expect([0, 0.34, 0.99, 1].map { choice.value(at: $0) } == [63, 127, 255, 255])
        #expect(real.value(at: -3) == real.value(at: 0))
    }

    @Test func configurationCarriesEveryParameter() {
        let unit = Array(repeating: 1.0, count: SearchSpace.diamonds.dimensions.count)
        let c = SearchSpace.diamonds.configuration(at: unit, base: TrainingConfiguration(seed: 5))
        #expect(c.numLeaves == 255 && c.maxBin == 255 && c.maxDepth == 12 && c.minDataInLeaf == 100)
        #expect(abs(c.learningRate - 0.3) < 1e-12 && c.featureFraction == 1 && c.seed == 5)
        #expect(throws: Never.self) { try c.validate() }
        let low = SearchSpace.diamonds.configuration(at: unit.map { _ in 0 }, base: TrainingConfiguration())
        #expect(throws: Never.self) { try low.validate() }
    }
}

@Suite struct ParzenTests {
    @Test func proposalsConcentrateNearGoodPoints() {
        // Loss is distance from 0.8 in both dimensions: TPE should propose near (0.8, 0.8).
        var random = SeededRandom(seed: 1)
        var history: [(point: [Double], loss: Double)] = []
        for _ in 0..<30 {
            let p = ParzenSampler.uniform(dimensions: 2, random: &random)
            history.append((p, abs(p[0] - 0.8) + abs(p[1] - 0.8)))
        }
        var near = 0
        for _ in 0..<40 {
            let p = ParzenSampler().propose(history: history, pending: [], dimensions: 2, random: &random)
            #expect(p.allSatisfy { $0 >= 0 && $0 <= 1 })
            if abs(p[0] - 0.8) + abs(p[1] - 0.8) < 0.4 { near += 1 }
        }
        #expect(near >= 28)  // uniform sampling would land there ~15% of the time
    }
}

@Suite struct TunerTests {
    static func data(rows: Int) -> DiamondTable {
        var rng = SeededRandom(seed: 3)
        var table = DiamondTable()
        for row in 0..<rows {
            let carat = 0.3 + Double(rng.below(200)) / 100
            let x = 6.4 * carat.squareRoot()
            let clarity = Clarity(rawValue: UInt8(rng.below(8)))!
            let d = Diamond(carat: carat, cut: .ideal, color: .g, clarity: clarity, depth: 61.8, table: 57,
                            x: x, y: x, z: x * 0.618)
            let price = exp(7.8 + 1.7 * log(carat) + 0.08 * Double(clarity.rawValue) + 0.05 * (rng.unit() - 0.5))
            table.append(d, price: price, sourceRow: row + 1)
        }
        return table
    }

    static let quick = TuningConfiguration(
        maxTrials: 8, timeBudgetSeconds: nil, startupTrials: 4, parallelTrials: 2, threads: 2, maxRounds: 120,
        earlyStoppingRounds: 10, rungMinRounds: 20, reductionFactor: 3, seed: 11)

    @Test func sameSeedAndBudgetGiveTheSameTrials() throws {
        let data = Self.data(rows: 800)
        let a = try Tuner(configuration: Self.quick, data: data, id: "a").tune()
        let b = try Tuner(configuration: Self.quick, data: data, id: "b").tune()
        #expect(a.trials.count == 8)
        #expect(a.trials.map(\.unit) == b.trials.map(\.unit))
        #expect(a.trials.map(\.rmse) == b.trials.map(\.rmse))
        #expect(a.trials.map(\.state) == b.trials.map(\.state))
        #expect(a.stopReason == "trial budget of 8 reached")
        let best = try #require(a.best)
        #expect(a.trials.allSatisfy { ($0.rmse ?? .infinity) >= best.rmse! })
    }

    @Test func weakTrialsArePrunedAtRungs() throws {
        var c = Self.quick
        c.maxTrials = 12
        c.earlyStoppingRounds = 0  // so only pruning ends trials early
        let run = try Tuner(configuration: c, data: Self.data(rows: 600), id: "p").tune()
        let pruned = run.trials.filter { $0.state == .pruned }
        #expect(!pruned.isEmpty)
        #expect(pruned.allSatisfy { $0.roundsTrained < 120 && [20, 60].contains($0.roundsTrained) })
        // The first batches have nothing to compare with: they are never pruned.
        #expect(run.trials.prefix(2).allSatisfy { $0.state == .completed })
    }

    @Test func resumeContinuesWhereTheRunStopped() throws {
        let data = Self.data(rows: 600)
        var half = Self.quick
        half.maxTrials = 4
        let first = try Tuner(configuration: half, data: data, id: "r").tune()
        var saved: [TuningRun] = []
        let resumed = try Tuner(configuration: Self.quick, data: data, id: "r", resume: first)
            .tune(record: { saved.append($0) })
        let whole = try Tuner(configuration: Self.quick, data: data, id: "w").tune()
        #expect(resumed.trials.count == 8)
        #expect(resumed.trials.map(\.unit) == whole.trials.map(\.unit))
        #expect(saved.count >= 2)  // after every batch, and at the end
    }

    @Test func timeBudgetStopsTheRun() throws {
        var c = Self.quick
        c.maxTrials = 10_000
        c.timeBudgetSeconds = 1
        let started = Date()
        let run = try Tuner(configuration: c, data: Self.data(rows: 400), id: "t").tune()
        #expect(run.stopReason?.contains("time budget") == true)
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test func kFoldAveragesFolds() throws {
        var c = Self.quick
        c.maxTrials = 2
        c.folds = 3
        let run = try Tuner(configuration: c, data: Self.data(rows: 450), id: "k").tune()
        #expect(run.trials.allSatisfy { $0.state == .completed && $0.rmse != nil })
    }

    @Test func badSettingsAreRefused() {
        var c = Self.quick
        c.folds = 0
        #expect(throws: TuningError.self) { try Tuner(configuration: c, data: Self.data(rows: 400), id: "x") }
        #expect(throws: TuningError.self) { try Tuner(configuration: Self.quick, data: Self.data(rows: 20), id: "x") }
    }
}
