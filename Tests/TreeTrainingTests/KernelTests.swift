import CLoupeKernels
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TreeTraining

/// The C kernels against plain Swift loops that say the same thing.
@Suite struct KernelTests {
    @Test(arguments: [1, 3, 9, 13, 70])
    func histogramMatchesASwiftLoop(features: Int) {
        var rng = SeededRandom(seed: UInt64(features))
        let rowCount = 600
        let binCounts = (0..<features).map { _ in 1 + rng.below(255) }
        var offsets: [UInt32] = []
        var total = 0
        for c in binCounts {
            offsets.append(UInt32(total))
            total += c
        }
        let bins = (0..<(rowCount * features)).map { i in UInt8(rng.below(binCounts[i % features])) }
        let gradients = (0..<rowCount).map { _ in Double(rng.below(2001)) / 1000 - 1 }
        let rows = (0..<rowCount).filter { _ in rng.below(3) > 0 }.map { Int32($0) }

        var expected = [Double](repeating: 0, count: 2 * total)
        for r in rows {
            for f in 0..<features {
                let slot = 2 * (Int(offsets[f]) + Int(bins[Int(r) * features + f]))
                expected[slot] += gradients[Int(r)]
                expected[slot + 1] += 1
            }
        }
        var got = [Double](repeating: 0, count: 2 * total)
        loupe_hist_accumulate(bins, features, offsets, Int32(features), rows, 0, rows.count, gradients, &got)
        #expect(got == expected)

        // Without an index list: a contiguous run of rows starting at first_row.
        var contiguous = [Double](repeating: 0, count: 2 * total)
        var expectedRun = [Double](repeating: 0, count: 2 * total)
        for r in 100..<400 {
            for f in 0..<features {
                let slot = 2 * (Int(offsets[f]) + Int(bins[r * features + f]))
                expectedRun[slot] += gradients[r]
                expectedRun[slot + 1] += 1
            }
        }
        loupe_hist_accumulate(bins, features, offsets, Int32(features), nil, 100, 300, gradients, &contiguous)
        #expect(contiguous == expectedRun)
    }

    @Test func partitionIsStableAndCountsTheLeftRows() {
        var rng = SeededRandom(seed: 5)
        let column = (0..<1000).map { _ in UInt8(rng.below(256)) }
        for threshold in [UInt8(0), 17, 128, 254, 255] {
            var rows = (0..<1000).filter { $0 % 3 != 1 }.map { Int32($0) }
            let original = rows
            var scratch = [Int32](repeating: 0, count: rows.count)
            let left = loupe_partition_rows(&rows, rows.count, column, threshold, &scratch)
            let expectedLeft = original.filter { column[Int($0)] <= threshold }
            let expectedRight = original.filter { column[Int($0)] > threshold }
            #expect(left == expectedLeft.count)
            #expect(rows == expectedLeft + expectedRight)
        }
    }

    @Test func subtractAndAdd() {
        var a: [Double] = [5, 6, 7]
        loupe_subtract(&a, [1, 2, 3], 3)
        #expect(a == [4, 4, 4])
        loupe_add(&a, [0.5, 0.25, 1], 3)
        #expect(a == [4.5, 4.25, 5])
    }

    @Test func spinPoolRunsEveryTaskExactlyOncePerRun() {
        let pool = SpinPool(threads: 3)
        defer { pool.shutdown() }
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { hits.deallocate() }
        let shared = UncheckedPointer(hits)
        var wrong = 0
        for round in 0..<3000 {
            let tasks = round % 9  // 0 to 8 tasks: fewer and more than the threads
            hits.initialize(repeating: 0, count: 16)
            pool.run(tasks: tasks) { shared.pointer[$0] += 1 }
            if (0..<16).contains(where: { hits[$0] != ($0 < tasks ? 1 : 0) }) { wrong += 1 }
            if round % 500 == 0 { usleep(3000) }  // let the workers fall asleep now and then
        }
        #expect(wrong == 0)
    }

    @Test func spinPoolWithOneThreadRunsInline() {
        let pool = SpinPool(threads: 1)
        defer { pool.shutdown() }
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0, count: 4)
        let shared = UncheckedPointer(hits)
        pool.run(tasks: 4) { shared.pointer[$0] += 1 }
        #expect((0..<4).allSatisfy { hits[$0] == 1 })
    }
}

struct UncheckedPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(_ pointer: UnsafeMutablePointer<Int>) { self.pointer = pointer }
}

@Suite struct SamplingTests {
    /// Bagging's row sample: k distinct rows in increasing order, each row equally likely.
    @Test(arguments: [(0, 10), (1, 1), (3, 10), (10, 10), (885, 1000)])
    func sampleIsSortedDistinctAndTheRightSize(k: Int, n: Int) {
        var random = SeededRandom(seed: UInt64(k * 31 + n))
        let sample = random.sample(k, of: n)
        #expect(sample.count == k)
        #expect(zip(sample, sample.dropFirst()).allSatisfy { $0 < $1 })
        #expect(sample.allSatisfy { (0..<n).contains($0) })
    }

    @Test func everyRowIsEquallyLikely() {
        // 20,000 samples of 3 of 10: each row is chosen 6,000 times on average (σ ≈ 65). A
        // sampler favouring early rows (stopping once it has k) fails this by thousands.
        var random = SeededRandom(seed: 9)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<20_000 {
            for i in random.sample(3, of: 10) { counts[i] += 1 }
        }
        #expect(counts.allSatisfy { abs($0 - 6_000) < 400 }, "\(counts)")
    }
}
