#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DiamondSchema
import Testing
@testable import DataCleaning

@Suite("Population stability index")
struct PopulationStabilityTests {
    private let eps = PopulationStability.defaultEpsilon

    private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 * max(1, abs(b)) }

    @Test func identicalSamplesHaveZeroPSI() {
        let values = (1...1000).map { Double($0 % 37) * 0.5 }
        #expect(PopulationStability.psi(expected: values, actual: values) == 0)
        #expect(PopulationStability.psi(expected: values, actual: values.reversed(), bins: 7) == 0)
    }

    @Test func twoBinsByHand() {
        // Median of [1,2,3,4] is 2: bins (-inf, 2] and (2, inf); expected shares 0.5 / 0.5.
        // Actual [1,1,1,4]: 0.75 / 0.25 → 0.25·ln 1.5 + 0.25·ln 2 = 0.25·ln 3.
        let psi = PopulationStability.psi(expected: [1, 2, 3, 4], actual: [1, 1, 1, 4], bins: 2)
        #expect(close(psi, 0.25 * log(3.0)), "\(psi)")
        #expect(close(psi, 0.2746530721670274))
    }

    @Test func anEmptyBinUsesEpsilon() {
        let psi = PopulationStability.psi(expected: [1, 2, 3, 4], actual: [1, 1, 1, 1], bins: 2)
        let expected = (1 - 0.5) * log(1 / 0.5) + (eps - 0.5) * log(eps / 0.5)
        #expect(close(psi, expected), "\(psi)")
        #expect(close(psi, 4.60431846666895))
    }

    @Test func decileShift() {
        // Edges 10, 20, …, 90. Shifting by +10 empties the first decile and doubles the last.
        let expected = (1...100).map(Double.init)
        let actual = (11...110).map(Double.init)
        #expect(PopulationStability.quantileEdges(sorted: expected, bins: 10) == [10, 20, 30, 40, 50, 60, 70, 80, 90])
        #expect(PopulationStability.counts(actual, edges: [10, 20, 30, 40, 50, 60, 70, 80, 90])
            == [0, 10, 10, 10, 10, 10, 10, 10, 10, 20])
        let psi = PopulationStability.psi(expected: expected, actual: actual)
        let byHand = (eps - 0.1) * log(eps / 0.1) + (0.2 - 0.1) * log(2.0)
        #expect(close(psi, byHand), "\(psi) vs \(byHand)")
    }

    @Test func tiedDataGetsFewerBins() {
        #expect(PopulationStability.quantileEdges(sorted: [5, 5, 5, 5], bins: 10) == [5])
        #expect(PopulationStability.quantileEdges(sorted: [1, 1, 1, 2, 2, 3], bins: 3) == [1, 2])
        // Same constant on both sides: no drift. Values above every edge land in the last bin.
        #expect(PopulationStability.psi(expected: [5, 5, 5], actual: [5, 5]) == 0)
        #expect(PopulationStability.psi(expected: [5, 5, 5], actual: [6, 6]) > 9)
    }

    @Test func emptyOrNaNInputGivesNaN() {
        #expect(PopulationStability.psi(expected: [], actual: [1]).isNaN)
        #expect(PopulationStability.psi(expected: [1], actual: []).isNaN)
        #expect(PopulationStability.psi(expected: [.nan], actual: [1]).isNaN)
        #expect(PopulationStability.psi(expected: [1, .nan, 2], actual: [1, 2, .nan], bins: 2) == 0)
        #expect(PopulationStability.psi(expectedCounts: [1, 2], actualCounts: [1]).isNaN)
    }

    @Test func perFeatureOverTables() throws {
        let base = bundledResult.clean
        let same = PopulationStability.psi(expected: base, actual: base)
        #expect(same.count == Feature.count)
        #expect(same.values.allSatisfy { $0 == 0 })

        // Keep only the Ideal stones: cut drifts hard, everything else a little.
        let ideal = base.rows(base[.cut].indices.filter { base[.cut][$0] == Double(Cut.ideal.rawValue) })
        let drift = PopulationStability.psi(expected: base, actual: ideal)
        var cutCounts = [Int](repeating: 0, count: Cut.allCases.count)
        for code in base[.cut] { cutCounts[Int(code)] += 1 }
        var idealCounts = [Int](repeating: 0, count: Cut.allCases.count)
        idealCounts[Int(Cut.ideal.rawValue)] = ideal.count
        let cutPSI = try #require(drift[.cut])
        #expect(cutPSI == PopulationStability.psi(expectedCounts: cutCounts, actualCounts: idealCounts))
        #expect(cutPSI > 1)
        #expect(try #require(drift[.carat]) < cutPSI)
        #expect(try #require(drift[.carat]) > 0)
    }
}
