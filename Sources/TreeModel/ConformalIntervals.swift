/// Split-conformal calibration: the sorted absolute residuals |y − ŷ| (on the raw, e.g. log,
/// scale) of rows the model never trained on.
///
/// For a coverage level α the half-width is the ⌈(n+1)·α⌉-th smallest residual, which gives
/// at least α coverage on exchangeable data (Vovk et al.; Lei et al. 2018). On the log scale
/// the range is multiplicative: price·e^(−q) … price·e^(+q).
public struct ConformalIntervals: Sendable, Equatable {
    /// The default coverage level of a price range.
    public static let defaultLevel = 0.9

    /// Absolute calibration residuals, ascending.
    public private(set) var residuals: [Double]

    /// Calibrates from residuals in any order; non-finite values are refused.
    public init?(residuals: [Double]) {
        guard !residuals.isEmpty, residuals.allSatisfy({ $0.isFinite && $0 >= 0 }) else { return nil }
        self.residuals = residuals.sorted()
    }

    /// Number of calibration rows.
    public var count: Int { residuals.count }

    /// The half-width on the raw scale for coverage `level` in (0, 1), or nil when the
    /// calibration set is too small for that level (⌈(n+1)·level⌉ > n) or the level is invalid.
    public func halfWidth(level: Double) -> Double? {
        guard level > 0, level < 1 else { return nil }
        let rank = Int(((Double(count) + 1) * level).rounded(.up))
        guard rank >= 1, rank <= count else { return nil }
        return residuals[rank - 1]
    }
}
