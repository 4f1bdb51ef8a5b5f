import Foundation
import Testing
import TreeModel
@testable import TreeTraining

@Suite struct RangeCalibrationTests {
    /// Rows whose log-price error grows with the price (×6 from the cheapest to the dearest)
    /// and doubles for cut Fair, as a model's errors do on real stones; raw scores ŷ are
    /// uniform on [6, 10], the target is ŷ + error.
    static func heteroscedastic(rows: Int, seed: UInt64) -> RangeCalibration.ScoredRows {
        var rng = SeededRandom(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
        var raw: [Double] = [], target: [Double] = []
        var columns = [[Double]](repeating: [], count: 9)
        for _ in 0..<rows {
            let y = 6 + 4 * uniform()
            let cut = uniform() < 0.2 ? 0.0 : Double(1 + rng.below(4))  // 20% Fair
            let normal = (-2 * log(1 - uniform())).squareRoot() * cos(2 * .pi * uniform())  // Box–Muller
            let sigma = 0.02 * exp(0.45 * (y - 6)) * (cut == 0 ? 2 : 1)
            raw.append(y)
            target.append(y + sigma * normal)
            let features = [exp(y / 8), cut, Double(rng.below(7)), Double(rng.below(8)), 61.5, 57, 5, 5, 3]
            for f in 0..<9 { columns[f].append(features[f]) }
        }
        return .init(raw: raw, target: target, columns: columns)
    }

    /// Coverage of the rows in each group, with the ranges `intervals` gives at 90%.
    static func coverage(_ intervals: ConformalIntervals, _ rows: RangeCalibration.ScoredRows, groups: [[Int]]) -> [Double] {
        let q = intervals.scoreQuantile(level: 0.9)!
        return groups.map { group in
            let inside = group.filter { row in
                let half = intervals.halfWidth(quantile: q, raw: rows.raw[row]) { rows.columns[$0][row] }
                return abs(rows.target[row] - rows.raw[row]) <= half
            }
            return Double(inside.count) / Double(group.count)
        }
    }

    /// With error that grows with the price, one width for every stone over-covers cheap stones
    /// and under-covers dear ones; the adaptive ranges hold 90% in every price fifth and for
    /// cut Fair.
    ///
    /// Tolerance: a group of 1,000 test rows has a binomial sd of √(0.9·0.1/1000) = 0.95
    /// points; the 2,000 calibration rows move every group together by sd 0.67 points; a price
    /// bin's factor comes from 400 scale rows, a mean of |r| with a relative sd of about
    /// 0.75/√400 = 3.8%, which moves the bin's coverage by about 1.3 points. In all about 1.75
    /// points, so ±5 points is 2.9 sd. Constant width misses the dearest fifth by 20 points.
    @Test func adaptiveRangesHoldCoverageWhereConstantWidthFails() throws {
        let scaleRows = Self.heteroscedastic(rows: 2000, seed: 1)
        let calibration = Self.heteroscedastic(rows: 2000, seed: 2)
        let test = Self.heteroscedastic(rows: 5000, seed: 3)
        let byPrice = test.raw.indices.sorted { test.raw[$0] < test.raw[$1] }
        var groups = (0..<5).map { Array(byPrice[($0 * 1000)..<(($0 + 1) * 1000)]) }  // price fifths
        groups.append(test.raw.indices.filter { test.columns[1][$0] == 0 })  // cut Fair (~1,000 rows)
        groups.append(test.raw.indices.filter { test.columns[1][$0] != 0 })

        let constant = try #require(ConformalIntervals(residuals: calibration.raw.indices.map {
            abs(calibration.target[$0] - calibration.raw[$0])
        }))
        let constantCoverage = Self.coverage(constant, test, groups: groups)
        #expect(constantCoverage[0] > 0.98)  // cheapest fifth: far too wide
        #expect(constantCoverage[4] < 0.75)  // dearest fifth: misses one in four
        #expect(constantCoverage[5] < 0.8)  // Fair

        let adaptive = try #require(RangeCalibration.calibrate(scaleRows: scaleRows, calibration: calibration))
        #expect(adaptive.isAdaptive)
        let adaptiveCoverage = Self.coverage(adaptive, test, groups: groups)
        for (group, c) in adaptiveCoverage.enumerated() {
            #expect(abs(c - 0.9) <= 0.05, "group \(group): coverage \(c)")
        }
        // The scale found the shape: rising with the price, about double for Fair.
        let scale = try #require(adaptive.errorScale)
        #expect(zip(scale.priceFactors, scale.priceFactors.dropFirst()).allSatisfy { $0 < $1 })
        let cut = try #require(scale.gradeFactors.first { $0.feature == 1 })
        let ratio = cut.factors[0] / (cut.factors[1...].reduce(0, +) / 4)
        #expect(ratio > 1.6 && ratio < 2.4)
    }

    @Test func tooFewScaleRowsGiveConstantWidth() throws {
        let rows = Self.heteroscedastic(rows: 300, seed: 4)
        let few = Self.heteroscedastic(rows: RangeCalibration.minimumScaleRows - 1, seed: 5)
        let intervals = try #require(RangeCalibration.calibrate(scaleRows: few, calibration: rows))
        #expect(!intervals.isAdaptive)
        #expect(intervals.count == 300)
        let enough = Self.heteroscedastic(rows: RangeCalibration.minimumScaleRows, seed: 5)
        #expect(RangeCalibration.calibrate(scaleRows: enough, calibration: rows)?.isAdaptive == true)
    }

    @Test func scaleRowsAreCappedEvenly() {
        let many = Array(0..<(2 * RangeCalibration.maximumScaleRows + 1))
        let sample = RangeCalibration.scaleRowSample(many)
        #expect(sample.count == RangeCalibration.maximumScaleRows)
        #expect(sample.first == 0 && sample[1] == 2)
        #expect(RangeCalibration.scaleRowSample([3, 5, 8]) == [3, 5, 8])
    }

    /// Without range folds, with early stopping the validation rows fit the scale, without it
    /// the training rows do; either way every calibration row is scored.
    @Test func trainerFitsTheScaleOnValidationRowsElseTrainingRows() throws {
        let data = TrainingFixtures.synthetic(rows: 2500, seed: 9)
        var config = TrainerTests.small
        config.rangeFolds = 0
        config.rounds = 20
        config.earlyStoppingRounds = 5
        config.validationFraction = 0.1
        let withValidation = try Trainer(configuration: config).train(data).model
        #expect(withValidation.intervals?.isAdaptive == true)
        #expect(withValidation.intervals?.count == 500)
        config.earlyStoppingRounds = 0
        let without = try Trainer(configuration: config).train(data).model
        #expect(without.intervals?.isAdaptive == true)
        #expect(without.intervals?.count == 500)
        #expect(without.intervals?.errorScale != withValidation.intervals?.errorScale)
        // The stored model is version 3 and serves the same ranges after a round trip.
        let bytes = without.serialized()
        #expect(bytes[8] == 3)
        #expect(try Ensemble(serialized: bytes) == without)
    }

    /// With range folds (the default) out-of-fold residuals of the training rows fit the
    /// scale, and the validation rows join the calibration rows' scores; without early
    /// stopping there are no validation rows and the calibration rows alone are scored.
    @Test func trainerFitsTheScaleOutOfFoldAndScoresValidationRowsToo() throws {
        let data = TrainingFixtures.synthetic(rows: 2500, seed: 9)
        var config = TrainerTests.small
        config.rounds = 20
        config.earlyStoppingRounds = 5
        config.validationFraction = 0.1
        config.rangeFolds = 3
        let trained = try Trainer(configuration: config).train(data)
        let intervals = try #require(trained.model.intervals)
        #expect(intervals.isAdaptive)
        #expect(intervals.count == 500 + 250)
        config.rangeFolds = 0
        let legacy = try Trainer(configuration: config).train(data).model
        #expect(legacy.intervals?.count == 500)
        #expect(legacy.intervals?.errorScale != intervals.errorScale)
        #expect(legacy.trees == trained.model.trees)  // the folds change the ranges only
        config.rangeFolds = 3
        config.earlyStoppingRounds = 0
        let without = try Trainer(configuration: config).train(data).model
        #expect(without.intervals?.isAdaptive == true)
        #expect(without.intervals?.count == 500)
    }

    /// Configurations stored before range folds existed still decode (with today's default),
    /// and a bad fold count is named.
    @Test func rangeFoldsDecodeWhenAbsentAndAreChecked() throws {
        var json = try #require(String(data: JSONEncoder().encode(TrainerTests.small), encoding: .utf8))
        #expect(json.contains("\"rangeFolds\":3"))
        json = json.replacingOccurrences(of: "\"rangeFolds\":3,", with: "").replacingOccurrences(of: ",\"rangeFolds\":3", with: "")
        #expect(!json.contains("rangeFolds"))
        let decoded = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(json.utf8))
        #expect(decoded == TrainerTests.small)
        for bad in [1, -1, 21] {
            var config = TrainerTests.small
            config.rangeFolds = bad
            #expect { try config.validate() } throws: { ($0 as? TrainingError)?.message.contains("range folds") == true }
        }
        var config = TrainerTests.small
        config.rangeFolds = 0
        try config.validate()
    }
}
