import Testing
@testable import TreeTraining

@Suite struct FeatureBinsTests {
    @Test func fewDistinctValuesGetOneBinEach() {
        let values = [3.0, 1, 2, 2, 3, 1, 1, 2, 3, 3]
        let bins = FeatureBins(fitting: values, maxBin: 255)
        #expect(bins.upperBounds == [1.5, 2.5, .infinity])
        #expect(bins.bin(1) == 0)
        #expect(bins.bin(1.5) == 0)  // on the bound: ≤ goes to the lower bin
        #expect(bins.bin(1.6) == 1)
        #expect(bins.bin(100) == 2)
        #expect(bins.bin(-100) == 0)
    }

    @Test func rareValuesShareABin() {
        // 5 appears once: fewer than minDataInBin rows, so it does not get a bin to itself.
        let values = [1.0, 1, 1, 5, 9, 9, 9, 9]
        let bins = FeatureBins(fitting: values, maxBin: 255, minDataInBin: 3)
        #expect(bins.upperBounds == [3, .infinity])
    }

    @Test func constantFeatureHasOneBin() {
        #expect(FeatureBins(fitting: [2, 2, 2], maxBin: 255).count == 1)
    }

    @Test func manyDistinctValuesAreBinnedByEqualCount() {
        var rng = SeededRandom(seed: 11)
        let values = (0..<20_000).map { _ in Double(rng.below(1_000_000)) / 1000 }
        let bins = FeatureBins(fitting: values, maxBin: 64)
        #expect(bins.count <= 64)
        #expect(bins.count >= 60)
        var counts = [Int](repeating: 0, count: bins.count)
        for v in values { counts[Int(bins.bin(v))] += 1 }
        let expected = Double(values.count) / Double(bins.count)
        #expect(counts.allSatisfy { Double($0) < expected * 1.6 && Double($0) > expected * 0.4 })
    }

    @Test func binIsTheFirstBinWhoseBoundIsAtLeastTheValue() {
        var rng = SeededRandom(seed: 12)
        let values = (0..<5000).map { _ in Double(rng.below(700)) / 7 }
        let bins = FeatureBins(fitting: values, maxBin: 40)
        for v in values + bins.upperBounds.dropLast() {
            let b = Int(bins.bin(v))
            #expect(v <= bins.upperBounds[b])
            if b > 0 { #expect(v > bins.upperBounds[b - 1]) }
        }
    }

    @Test func midpointStaysBetweenCloseNeighbours() {
        let a = 1.0
        let b = a.nextUp
        let m = FeatureBins.midpoint(a, b)
        #expect(m >= a && m < b)
    }
}
