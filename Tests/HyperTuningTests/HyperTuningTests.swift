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

    @Test func kernelWidthDoesNotShrinkWithTheGoodPointsSpread() {
        // Optuna's multivariate width, 0.2·n^(−1/(d+4)): two good points close together get the
        // same kernels as two far apart (a width from their spread locked the search onto them).
        let tight = Mixture(points: [[0.5, 0.5], [0.501, 0.5]], dimensions: 2)
        let wide = Mixture(points: [[0.1, 0.9], [0.9, 0.1]], dimensions: 2)
        #expect(tight.bandwidth == wide.bandwidth)
        #expect(abs(tight.bandwidth[0] - 0.2 * pow(2, -1.0 / 6)) < 1e-12)
    }
}

/// Runs blocking work (tuning, training) on a thread of its own, so a test does not hold one of
/// the cooperative threads (two on a 2-core machine) that the suites running beside it need.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Serialized: each test trains, and two at once would take both cores from the other suites.
@Suite(.serialized) struct TunerTests {
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

    @Test func sameSeedAndBudgetGiveTheSameTrials() async throws {
        let data = Self.data(rows: 800)
        let (a, b) = try await offPool {
            (try Tuner(configuration: Self.quick, data: data, id: "a").tune(),
             try Tuner(configuration: Self.quick, data: data, id: "b").tune())
        }
        #expect(a.trials.count == 8)
        #expect(a.trials.map(\.unit) == b.trials.map(\.unit))
        #expect(a.trials.map(\.rmse) == b.trials.map(\.rmse))
        #expect(a.trials.map(\.state) == b.trials.map(\.state))
        #expect(a.stopReason == "trial budget of 8 reached")
        let best = try #require(a.best)
        #expect(a.trials.allSatisfy { ($0.rmse ?? .infinity) >= best.rmse! })
    }

    @Test func weakTrialsArePrunedAtRungs() async throws {
        var c = Self.quick
        c.maxTrials = 12
        c.earlyStoppingRounds = 0  // so only pruning ends trials early
        let configuration = c
        let run = try await offPool { try Tuner(configuration: configuration, data: Self.data(rows: 600), id: "p").tune() }
        let pruned = run.trials.filter { $0.state == .pruned }
        #expect(!pruned.isEmpty)
        // Rungs 20 and 60 count rounds at learning rate 0.1: a trial at rate lr is compared after 20·0.1/lr rounds.
        for trial in pruned {
            let rate = try #require(trial.parameters["learningRate"])
            #expect([20, 60].map { Tuner.rungRound($0, learningRate: rate) }.contains(trial.roundsTrained), "\(trial)")
            #expect(Set(trial.rungLosses.keys).isSubset(of: [20, 60]))
        }
        #expect(Tuner.rungRound(100, learningRate: 0.02) == 500 && Tuner.rungRound(100, learningRate: 0.3) == 33)
        #expect(Tuner.rung(atRound: 500, learningRate: 0.02, c) == nil && Tuner.rung(atRound: 100, learningRate: 0.02, c) == 20)
        // The first batches have nothing to compare with: they are never pruned.
        #expect(run.trials.prefix(2).allSatisfy { $0.state == .completed })
    }

    @Test func resumeContinuesWhereTheRunStopped() async throws {
        let data = Self.data(rows: 600)
        var half = Self.quick
        half.maxTrials = 4
        let halfConfiguration = half
        let (resumed, saved, whole) = try await offPool {
            let first = try Tuner(configuration: halfConfiguration, data: data, id: "r").tune()
            var saved: [TuningRun] = []
            let resumed = try Tuner(configuration: Self.quick, data: data, id: "r", resume: first)
                .tune(record: { saved.append($0) })
            return (resumed, saved, try Tuner(configuration: Self.quick, data: data, id: "w").tune())
        }
        #expect(resumed.trials.count == 8)
        #expect(resumed.trials.map(\.unit) == whole.trials.map(\.unit))
        #expect(saved.count >= 2)  // after every batch, and at the end
    }

    @Test func timeBudgetStopsTheRun() async throws {
        var c = Self.quick
        c.maxTrials = 10_000
        c.timeBudgetSeconds = 1
        let started = Date()
        let configuration = c
        let run = try await offPool { try Tuner(configuration: configuration, data: Self.data(rows: 400), id: "t").tune() }
        #expect(run.stopReason?.contains("time budget") == true)
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test func kFoldAveragesFolds() async throws {
        var c = Self.quick
        c.maxTrials = 2
        c.folds = 3
        let configuration = c
        let (run, fitted) = try await offPool {
            let tuner = try Tuner(configuration: configuration, data: Self.data(rows: 450), id: "k")
            return (try tuner.tune(), try tuner.fitFinal())
        }
        #expect(run.trials.allSatisfy { $0.state == .completed && $0.rmse != nil })
        // Each fold's trainer saw 2/3 of the rows; the final fit scales its rounds to 95%.
        let final = try #require(fitted.final)
        #expect(final.rounds == Int((Double(final.bestRound) * 0.95 / (2.0 / 3)).rounded()))
    }

    @Test func theFinalFitIsPolishedOnlyWhenItValidatesBetterAndUsesTheValidationRows() async throws {
        let data = Self.data(rows: 800)
        let (searched, run, saved) = try await offPool {
            let tuner = try Tuner(configuration: Self.quick, data: data, id: "f")
            let searched = try tuner.tune()
            var saved: [TuningRun] = []
            return (searched, try tuner.fitFinal(record: { saved.append($0) }), saved)
        }
        #expect(searched.final == nil)
        #expect(Tuner.bestConfiguration(of: searched)?.earlyStoppingRounds == Self.quick.earlyStoppingRounds)
        let best = try #require(run.best)
        let final = try #require(run.final)
        #expect(saved.last?.final == final)
        #expect(run.trials == searched.trials)
        #expect(final.searchedLearningRate == best.parameters["learningRate"])
        let polishRate = Tuner.polishLearningRate(final.searchedLearningRate, Self.quick)
        #expect(polishRate == max(final.searchedLearningRate / Double(Tuner.polishFactor), 0.02))
        #expect(Tuner.polishLearningRate(0.3, Self.quick) == 0.075 && Tuner.polishLearningRate(0.05, Self.quick) == 0.02)
        #expect(Tuner.polishLearningRate(0.02, Self.quick) == 0.02)
        #expect((best.state == .pruned) == (final.finishedRMSE != nil))
        let searchedRMSE = final.finishedRMSE ?? best.rmse!
        if final.learningRate < final.searchedLearningRate {
            #expect(final.learningRate == polishRate)
            #expect(final.validationRMSE == final.polishedRMSE && final.validationRMSE < searchedRMSE)
        } else {
            #expect(final.validationRMSE == searchedRMSE)
            if best.state != .pruned { #expect(final.bestRound == best.bestRound) }
            #expect(polishRate == final.searchedLearningRate ? final.polishedRMSE == nil : final.polishedRMSE! >= searchedRMSE)
        }
        // Trials trained on 80% of the rows; the final model trains on 95% (all but calibration).
        #expect(final.rounds == Int((Double(final.bestRound) * 0.95 / 0.8).rounded()))

        let configuration = try #require(Tuner.bestConfiguration(of: run))
        #expect(configuration.earlyStoppingRounds == 0 && configuration.rounds == final.rounds)
        #expect(configuration.learningRate == final.learningRate && configuration.numLeaves == Int(best.parameters["numLeaves"]!))
        let (report, again) = try await offPool {
            let report = try Trainer(configuration: configuration).train(data).report
            // Deterministic like the search.
            let again = try Tuner(configuration: Self.quick, data: data, id: "g")
            _ = try again.tune()
            return (report, try again.fitFinal())
        }
        #expect(report.rows.validation == 0 && report.rows.train == 760)
        #expect(report.roundsTrained == final.rounds)
        #expect(again.final?.rounds == final.rounds)
    }

    @Test func aPrunedBestTrialIsTrainedOnToEarlyStoppingBeforeTheFinalFit() async throws {
        // A run whose best trial was pruned after 5 rounds, still improving.
        var c = Self.quick
        c.startupTrials = 1
        let unit = [0.5, 0.3, 0.5, 0.3, 0.9, 0.9, 0.2, 0.1, 1.0]
        let pruned = TrialRecord(
            number: 0, unit: unit, parameters: [:], state: .pruned, rmse: 5000, rungLosses: [20: 0.5], bestRound: 5,
            roundsTrained: 5, seconds: 0, error: nil)
        let saved = TuningRun(id: "p", configuration: c, trials: [pruned], started: Date())
        let configuration = c
        let fitted = try await offPool {
            try Tuner(configuration: configuration, data: Self.data(rows: 600), id: "p", resume: saved).fitFinal()
        }
        let final = try #require(fitted.final)
        let finished = try #require(final.finishedRMSE)
        #expect(finished < 5000 && final.validationRMSE <= finished)
        #expect(final.bestRound > 5)
    }

    @Test func finalistsAreRescoredOnASecondSplitAndTheBestMeanIsFitted() async throws {
        let data = Self.data(rows: 800)
        var rescoring = Self.quick
        rescoring.finalists = 3
        let rescoringConfiguration = rescoring
        let uncheckedConfiguration = Self.quick
        #expect(Self.quick.finalists == 0)
        let (run, plain) = try await offPool {
            let tuner = try Tuner(configuration: rescoringConfiguration, data: data, id: "f3")
            _ = try tuner.tune()
            let plain = try Tuner(configuration: uncheckedConfiguration, data: data, id: "f0")
            _ = try plain.tune()
            return (try tuner.fitFinal(), try plain.fitFinal())
        }
        let final = try #require(run.final)
        let rescored = try #require(final.finalistRMSE)
        let ranked = run.trials.filter { $0.rmse != nil }.sorted { $0.rmse! < $1.rmse! }
        #expect(Set(rescored.keys) == Set(ranked.prefix(3).map(\.number)))
        let mean = { (t: TrialRecord) in (t.rmse! + rescored[t.number]!) / 2 }
        let chosen = try #require(ranked.prefix(3).min { mean($0) < mean($1) })
        #expect(final.trial == chosen.number && run.best?.number == chosen.number)
        #expect(run.searchBest?.number == ranked[0].number)
        #expect(final.searchedLearningRate == chosen.parameters["learningRate"])
        // Without finalists the search's best is fitted, unchecked.
        #expect(plain.final?.finalistRMSE == nil && plain.best?.number == plain.searchBest?.number)
        #expect(plain.trials.map(\.rmse) == run.trials.map(\.rmse))
    }

    @Test func aConfigurationSavedBeforeFinalistsDecodesWithNone() throws {
        var saved = Self.quick
        saved.finalists = 3
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(saved)) as? [String: Any])
        #expect(json["finalists"] as? Int == 3)
        #expect(try JSONDecoder().decode(TuningConfiguration.self, from: JSONSerialization.data(withJSONObject: json)) == saved)
        json["finalists"] = nil
        let decoded = try JSONDecoder().decode(TuningConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(decoded == Self.quick)
    }

    @Test func aRunSavedBeforeFinalFitsStillDecodesAndEarlyStops() async throws {
        let run = try await offPool { try Tuner(configuration: Self.quick, data: Self.data(rows: 400), id: "old").tune() }
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(run)) as? [String: Any])
        json["final"] = nil
        let decoded = try JSONDecoder().decode(TuningRun.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(decoded.final == nil && decoded.trials == run.trials)
        let c = try #require(Tuner.bestConfiguration(of: decoded))
        #expect(c.earlyStoppingRounds == Self.quick.earlyStoppingRounds && c.rounds == Self.quick.maxRounds)
    }

    @Test func badSettingsAreRefused() {
        var c = Self.quick
        c.folds = 0
        #expect(throws: TuningError.self) { try Tuner(configuration: c, data: Self.data(rows: 400), id: "x") }
        #expect(throws: TuningError.self) { try Tuner(configuration: Self.quick, data: Self.data(rows: 20), id: "x") }
        c = Self.quick
        c.finalists = -1
        #expect(throws: TuningError.self) { try Tuner(configuration: c, data: Self.data(rows: 400), id: "x") }
    }
}
