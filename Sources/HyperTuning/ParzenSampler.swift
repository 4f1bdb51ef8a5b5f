import TreeTraining

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Multivariate Tree-structured Parzen Estimator proposals (Bergstra et al. 2011; the
/// multivariate form of Falkner et al. 2018 / Optuna's `multivariate=True`), in the unit cube.
///
/// The observed trials are split into the best γ ("good") and the rest ("bad"); each group
/// is modelled by a mixture of product Gaussian kernels (truncated to [0, 1]) centred on its
/// points plus a uniform prior component. Candidates are drawn from the good density and
/// the one with the largest log l(x) − log g(x) is proposed.
struct ParzenSampler {
    /// Candidates drawn per proposal.
    var candidates = 24
    /// Share of observations considered good (at most 25, at least 1), as in Optuna.
    func goodCount(_ n: Int) -> Int { max(1, min(25, Int((0.1 * Double(n)).rounded(.up)))) }

    /// A proposal from `history` (unit points with their losses, lower is better).
    /// `pending` are points proposed but not yet measured; they count as bad, so one batch
    /// does not propose the same point twice.
    func propose(history: [(point: [Double], loss: Double)], pending: [[Double]], dimensions: Int,
                 random: inout SeededRandom) -> [Double] {
        let sorted = history.sorted { $0.loss < $1.loss }
        let nGood = goodCount(sorted.count)
        let good = sorted.prefix(nGood).map(\.point)
        let bad = sorted.dropFirst(nGood).map(\.point) + pending
        let lGood = Mixture(points: good, dimensions: dimensions)
        let lBad = Mixture(points: bad, dimensions: dimensions)
        var best: [Double] = []
        var bestScore = -Double.infinity
        for _ in 0..<candidates {
            let x = lGood.sample(&random)
            let score = lGood.logDensity(x) - lBad.logDensity(x)
            if score > bestScore {
                bestScore = score
                best = x
            }
        }
        return best
    }

    /// A uniform random point (the start-up trials).
    static func uniform(dimensions: Int, random: inout SeededRandom) -> [Double] {
        (0..<dimensions).map { _ in random.unit() }
    }
}

/// A mixture of product truncated Gaussians on [0, 1]^d plus one uniform component.
struct Mixture {
    let points: [[Double]]
    let bandwidth: [Double]
    let dimensions: Int

    init(points: [[Double]], dimensions: Int) {
        self.points = points
        self.dimensions = dimensions
        // Optuna's multivariate rule: one bandwidth for every kernel, 0.2·n^(−1/(d+4)) of the
        // range. It does not shrink with the points' spread: a bandwidth from the good points'
        // own spread (Scott's rule, as this was) collapsed onto the first good trial, and later
        // trials only re-measured its neighbourhood's noise.
        let n = Double(max(points.count, 1))
        bandwidth = Array(repeating: 0.2 * pow(n, -1.0 / Double(dimensions + 4)), count: dimensions)
    }

    func sample(_ random: inout SeededRandom) -> [Double] {
        let k = random.below(points.count + 1)
        if k == points.count { return (0..<dimensions).map { _ in random.unit() } }
        return (0..<dimensions).map { d in
            // Truncated normal by rejection; the bandwidth is at most 0.5, so this ends quickly.
            for _ in 0..<64 {
                let v = points[k][d] + bandwidth[d] * random.normal()
                if v >= 0 && v <= 1 { return v }
            }
            return min(max(points[k][d], 0), 1)
        }
    }

    func logDensity(_ x: [Double]) -> Double {
        var total = 1.0  // the uniform component's density
        for p in points {
            var logTerm = 0.0
            for d in 0..<dimensions {
                let s = bandwidth[d]
                let z = (x[d] - p[d]) / s
                let mass = Self.phi((1 - p[d]) / s) - Self.phi(-p[d] / s)
                logTerm += -0.5 * z * z - log(s * (2 * Double.pi).squareRoot() * max(mass, 1e-12))
            }
            total += exp(logTerm)
        }
        return log(total / Double(points.count + 1))
    }

    static func phi(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
}

extension SeededRandom {
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300)
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
