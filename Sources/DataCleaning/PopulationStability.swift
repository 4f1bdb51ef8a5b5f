#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DiamondSchema

/// The population stability index (PSI): how far a new sample's distribution has moved from a
/// reference sample's. `PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ)` over bins, where eᵢ and aᵢ are the
/// shares of the expected (reference) and actual (new) values in bin i. A common reading:
/// below 0.1 stable, 0.1–0.25 some shift, above 0.25 a real shift.
public enum PopulationStability {
    /// The share used in place of an empty bin's 0, so the logarithm stays finite.
    public static let defaultEpsilon = 1e-4

    /// The PSI of `actual` against `expected` over `bins` quantile bins of `expected`.
    ///
    /// Bin edges are the expected values' k/bins quantiles (the smallest value with at least
    /// that share at or below it), k = 1 … bins − 1; equal edges are merged, so tied data gets
    /// fewer bins. Bin i holds values in (edgeᵢ₋₁, edgeᵢ]; the last bin is open above. A share
    /// of 0 counts as `epsilon`. NaNs are ignored. Returns NaN when either side has no values.
    public static func psi(
        expected: [Double], actual: [Double], bins: Int = 10, epsilon: Double = defaultEpsilon
    ) -> Double {
        let reference = expected.filter { !$0.isNaN }.sorted()
        let sample = actual.filter { !$0.isNaN }
        guard !reference.isEmpty, !sample.isEmpty else { return .nan }
        let edges = quantileEdges(sorted: reference, bins: max(1, bins))
        return psi(
            expectedCounts: counts(reference, edges: edges),
            actualCounts: counts(sample, edges: edges),
            epsilon: epsilon)
    }

    /// The PSI between two histograms over the same bins (e.g. counts per grade level).
    /// Returns NaN when either histogram is empty or they differ in length.
    public static func psi(expectedCounts: [Int], actualCounts: [Int], epsilon: Double = defaultEpsilon) -> Double {
        let expectedTotal = expectedCounts.reduce(0, +), actualTotal = actualCounts.reduce(0, +)
        guard expectedCounts.count == actualCounts.count, expectedTotal > 0, actualTotal > 0 else { return .nan }
        var sum = 0.0
        for i in expectedCounts.indices {
            let e = max(Double(expectedCounts[i]) / Double(expectedTotal), epsilon)
            let a = max(Double(actualCounts[i]) / Double(actualTotal), epsilon)
            sum += (a - e) * log(a / e)
        }
        return sum
    }

    /// The PSI of every feature of `actual` against `expected`. Grades (cut, color, clarity)
    /// use one bin per level; the other features use `bins` quantile bins.
    public static func psi(expected: DiamondTable, actual: DiamondTable, bins: Int = 10) -> [Feature: Double] {
        var out: [Feature: Double] = [:]
        for feature in Feature.allCases {
            if feature.isGrade {
                let levels = switch feature {
                case .cut: Cut.allCases.count
                case .color: Color.allCases.count
                default: Clarity.allCases.count
                }
                out[feature] = psi(
                    expectedCounts: levelCounts(expected[feature], levels: levels),
                    actualCounts: levelCounts(actual[feature], levels: levels))
            } else {
                out[feature] = psi(expected: expected[feature], actual: actual[feature], bins: bins)
            }
        }
        return out
    }

    /// The distinct k/bins quantiles of sorted values, k = 1 … bins − 1.
    static func quantileEdges(sorted: [Double], bins: Int) -> [Double] {
        var edges: [Double] = []
        let n = sorted.count
        for k in 1..<max(bins, 1) {
            let index = max(0, (k * n + bins - 1) / bins - 1)
            let edge = sorted[min(index, n - 1)]
            if edges.last.map({ edge > $0 }) ?? true { edges.append(edge) }
        }
        return edges
    }

    /// How many values fall in each of the `edges.count + 1` bins.
    static func counts(_ values: [Double], edges: [Double]) -> [Int] {
        var counts = [Int](repeating: 0, count: edges.count + 1)
        for value in values {
            // First edge >= value.
            var lo = 0, hi = edges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if edges[mid] < value { lo = mid + 1 } else { hi = mid }
            }
            counts[lo] += 1
        }
        return counts
    }

    private static func levelCounts(_ codes: [Double], levels: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: levels)
        for code in codes {
            let i = Int(code)
            if i >= 0 && i < levels { counts[i] += 1 }
        }
        return counts
    }
}
