import BundledData
import DataCleaning
import DiamondSchema
@testable import TreeTraining

/// Small data sets for training tests (debug builds run hot loops ~100× slower: keep them small).
enum TrainingFixtures {
    /// Synthetic diamonds with a known log-price: log p = 6 + 1.8·log(carat·3) + 0.05·clarity + noise.
    static func synthetic(rows: Int, seed: UInt64) -> DiamondTable {
        var rng = SeededRandom(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
        var table = DiamondTable()
        for row in 0..<rows {
            let carat = 0.2 + 2.5 * uniform()
            let clarity = Clarity(rawValue: UInt8(rng.below(8)))!
            let x = 6.5 * carat.squareRoot() + 0.1 * uniform()
            let y = x + 0.05 * uniform()
            let z = 0.61 * (x + y) / 2
            let diamond = Diamond(
                carat: carat, cut: Cut(rawValue: UInt8(rng.below(5)))!, color: Color(rawValue: UInt8(rng.below(7)))!,
                clarity: clarity, depth: 61 + uniform(), table: 55 + 4 * uniform(), x: x, y: y, z: z)
            let noise = 0.08 * (uniform() + uniform() + uniform() - 1.5)
            let price = (6 + 1.8 * log(carat * 3) + 0.05 * Double(clarity.rawValue) + noise).exponentiated
            table.append(diamond, price: price, sourceRow: row + 1)
        }
        return table
    }
}

extension Double {
    var exponentiated: Double { exp(self) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
