import DiamondSchema
import Testing

/// `accepts` (the batch path's check of every row) agrees with `violations(in:)` (which says
/// why) on every kind of value at and around every bound.
@Suite struct ValidationRangesTests {
    /// Values around each range's bounds, zero, signs, and the non-finite ones.
    static let probes: [Double] = [
        -.infinity, -1, -0.0, 0, .leastNonzeroMagnitude, 0.005, 0.01, 0.0100001, 0.1, 0.0999999, 0.5, 1, 3.9, 6.4,
        10, 10.0000001, 20, 20.0000001, 39.999999, 40, 61.8, 62.5, 80, 80.000001, 100, .infinity, .nan,
    ]

    @Test func acceptsExactlyWhatHasNoViolations() {
        let ranges = ValidationRanges.standard
        var rng: UInt64 = 7
        func pick() -> Double {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Self.probes[Int(rng >> 33) % Self.probes.count]
        }
        var accepted = 0
        // A plausible stone with one or two fields replaced by probes, and consistent and
        // inconsistent depths around the tolerance.
        for i in 0..<20_000 {
            var v = [1.01, 61.8, 56, 6.43, 6.47, 3.99]
            v[i % 6] = pick()
            if i % 3 == 0 { v[(i / 6) % 6] = pick() }
            if i % 5 == 0 {
                // depth near 100·2z/(x+y) ± the tolerance of 2
                v[1] = 100 * 2 * v[5] / (v[3] + v[4]) + [-2.0000001, -2, -1.9999999, 0, 1.9999999, 2, 2.0000001][i % 7]
            }
            let diamond = Diamond(carat: v[0], cut: .ideal, color: .g, clarity: .vs1, depth: v[1], table: v[2], x: v[3],
                                  y: v[4], z: v[5])
            let expected = ranges.violations(in: diamond).isEmpty
            #expect(ranges.accepts(carat: v[0], depth: v[1], table: v[2], x: v[3], y: v[4], z: v[5]) == expected,
                    "\(v)")
            if expected { accepted += 1 }
        }
        // Both outcomes were exercised.
        #expect(accepted > 1000)
        #expect(accepted < 19_000)
    }

    @Test func narrowerRangesAreHonoured() {
        let ranges = ValidationRanges(carat: 0.5...2, depth: 55...65, table: 50...60, dimension: 3...9, depthTolerance: 0.5)
        #expect(ranges.accepts(carat: 1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99))
        #expect(!ranges.accepts(carat: 2.5, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99))
        #expect(!ranges.accepts(carat: 1, depth: 61.0, table: 56, x: 6.43, y: 6.47, z: 3.99))  // 0.86 off the implied depth
    }
}
