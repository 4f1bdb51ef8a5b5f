import ModelRuntime
import Testing

@Suite struct CanaryRoutingTests {
    @Test func bucketsAreStableAndSpread() {
        // FNV-1a, not Swift's per-process seeded hash: the same partner lands in the same bucket
        // in every process and on every machine.
        #expect(CanaryRouting.bucket("") == Int(UInt64(0xcbf2_9ce4_8422_2325) % 100))
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c.
        #expect(CanaryRouting.bucket("a") == Int(UInt64(0xaf63_dc4c_8601_ec8c) % 100))
        #expect(CanaryRouting.bucket("acme") == CanaryRouting.bucket("acme"))
        let names = (0..<2000).map { "partner-\($0)" }
        let inTen = names.filter { CanaryRouting.inCanary($0, percent: 10) }.count
        // 10% of 2000 partners, within 5 binomial standard deviations (sd = 13.4).
        #expect(abs(inTen - 200) < 67)
        #expect(names.allSatisfy { !CanaryRouting.inCanary($0, percent: 0) && CanaryRouting.inCanary($0, percent: 100) })
    }

    @Test func raisingTheShareOnlyAddsPartners() {
        let names = (0..<500).map { "p\($0)" }
        for (low, high) in [(5, 20), (20, 50), (50, 99)] {
            let before = Set(names.filter { CanaryRouting.inCanary($0, percent: low) })
            let after = Set(names.filter { CanaryRouting.inCanary($0, percent: high) })
            #expect(before.isSubset(of: after) && after.count > before.count)
        }
    }
}
