/// SplitMix64 (Steele, Lea and Flood): a tiny seedable generator whose sequence is fixed by its
/// seed on every platform and Swift version. It seeds `SeededRandom`'s xoshiro state, so a
/// change here changes every seeded training run: the constants and steps must stay as they are.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state; the next value is derived from `state + golden gamma`.
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
