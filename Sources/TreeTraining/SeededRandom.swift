import LoupeUtilities

/// xoshiro256** seeded through SplitMix64: fast, small, and the same sequence on every
/// platform and Swift version (the standard library's generator makes no such promise).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    /// A uniform integer in 0..<bound (Lemire's method, unbiased).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, below(i + 1)) }
        return p
    }

    /// `k` distinct values of 0..<n in increasing order: selection sampling (Knuth's
    /// Algorithm S), one draw per candidate and no sort. Bagging calls this every round over
    /// every training row; a shuffled-then-sorted sample made it 2× a round's cost.
    public mutating func sample(_ k: Int, of n: Int) -> [Int] {
        precondition(k >= 0 && k <= n)
        var chosen: [Int] = []
        chosen.reserveCapacity(k)
        var i = 0
        while chosen.count < k {
            if below(n - i) < k - chosen.count { chosen.append(i) }
            i += 1
        }
        return chosen
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
