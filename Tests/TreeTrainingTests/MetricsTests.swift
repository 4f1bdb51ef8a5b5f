import Testing
import TreeModel
@testable import TreeTraining

@Suite struct MetricsTests {
    @Test func regressionMetricsByHand() {
        let m = RegressionMetrics(actual: [100, 200, 300, 400], predicted: [110, 190, 330, 400])
        #expect(abs(m.rmse - (1100.0 / 4).squareRoot()) < 1e-12)  // errors 10, -10, 30, 0
        #expect(m.mae == 12.5)
        #expect(abs(m.mape - 100 * (0.1 + 0.05 + 0.1 + 0) / 4) < 1e-12)
        #expect(abs(m.r2 - (1 - 1100.0 / 50000)) < 1e-12)
    }

    @Test func coverageAndWidth() {
        let estimates = [
            PriceEstimate(price: 100, low: 90, high: 110, level: 0.9),  // inside, width 0.2
            PriceEstimate(price: 100, low: 80, high: 120, level: 0.9),  // outside, width 0.4
            PriceEstimate(price: 100, low: 95, high: 105, level: 0.9),  // inside (on the edge), width 0.1
        ]
        let r = RangeMetrics(level: 0.9, actual: [100, 130, 105], estimates: estimates)
        #expect(abs(r.coverage - 2.0 / 3) < 1e-12)
        #expect(abs(r.medianRelativeWidth - 0.2) < 1e-12)
    }

    @Test func coverageDistanceInBinomialDeviations() {
        // 900 stones at 90%: one binomial sd is √(0.9·0.1/900) = 1 point.
        var r = RangeMetrics(level: 0.9, actual: [], estimates: [])
        r.coverage = 0.92
        #expect(abs(r.zScore(rows: 900) - 2) < 1e-9)
        r.coverage = 0.87
        #expect(abs(r.zScore(rows: 900) + 3) < 1e-9)
        #expect(abs(r.zScore(rows: 100) + 1) < 1e-9)  // 3 points on 100 stones is one sd
        #expect(r.zScore(rows: 0).isNaN)
    }

    @Test func decilesSplitByActualPrice() {
        let actual = (1...100).map(Double.init)
        let estimates = actual.map { PriceEstimate(price: $0 + 1, low: $0, high: $0 + 2, level: 0.9) }
        let report = EvaluationReport(actual: actual, estimates: estimates, level: 0.9, calibrated: true)
        #expect(report.deciles.count == 10)
        #expect(report.deciles[0].minPrice == 1 && report.deciles[0].maxPrice == 10)
        #expect(report.deciles[9].minPrice == 91 && report.deciles[9].maxPrice == 100)
        #expect(report.deciles.allSatisfy { $0.metrics.rows == 10 && $0.metrics.mae == 1 })
        #expect(report.table().contains("RMSE $1.0"))
        // Every range holds its stone: coverage 100%, √(0.09/10) ≈ 0.095 → z = 0.1 / 0.0949 ≈ 1.1.
        let decileLine = report.table().split(separator: "\n").first { $0.hasPrefix("1  ") }
        #expect(decileLine.map { $0.contains("100.0%  1.1 ") } == true)
    }

    @Test func fixedPointFormatting() {
        #expect(fmt(3.14159, 2) == "3.14")
        #expect(fmt(-0.5, 1) == "-0.5")
        #expect(fmt(2.999, 2) == "3.00")
        #expect(fmt(1234, 0) == "1234")
        #expect(fmt(0.05, 2) == "0.05")
    }
}
