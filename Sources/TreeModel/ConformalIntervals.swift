/// Split-conformal calibration: the sorted conformity scores of rows the model never trained on.
///
/// Without an error scale (every model before format version 3) a score is the absolute
/// residual |y − ŷ| on the raw (e.g. log) scale, and every stone gets the same half-width.
/// With one (normalised conformal), a score is |y − ŷ| / scale(x), and a stone's half-width is
/// the scores' quantile × its own scale: narrow where the model errs little, wide where it errs
/// much.
///
/// For a coverage level α the quantile is the ⌈(n+1)·α⌉-th smallest score, which gives at
/// least α coverage on exchangeable data (Vovk et al.; Lei et al. 2018; Papadopoulos et al.
/// 2008 for normalised scores), as long as the scale was fitted on other rows. On the log
/// scale the range is multiplicative: price·e^(−q) … price·e^(+q).
public struct ConformalIntervals: Sendable, Equatable {
    /// The default coverage level of a price range.
    public static let defaultLevel = 0.9

    /// Conformity scores of the calibration rows, ascending.
    public private(set) var scores: [Double]
    /// What the residuals were divided by; nil: constant width (the scores are the residuals).
    public private(set) var errorScale: ErrorScale?

    /// Constant-width calibration from absolute residuals in any order; non-finite or negative
    /// values are refused.
    public init?(residuals: [Double]) {
        self.init(scores: residuals, errorScale: nil)
    }

    /// Calibration from conformity scores (|residual| / the row's `errorScale` scale) in any order.
    public init?(scores: [Double], errorScale: ErrorScale?) {
        guard !scores.isEmpty, scores.allSatisfy({ $0.isFinite && $0 >= 0 }) else { return nil }
        self.scores = scores.sorted()
        self.errorScale = errorScale
    }

    /// Number of calibration rows.
    public var count: Int { scores.count }

    /// Whether ranges adapt to the stone (a normalised calibration).
    public var isAdaptive: Bool { errorScale != nil }

    /// The conformal quantile of the scores for coverage `level` in (0, 1): the half-width of
    /// a constant-width calibration, the multiplier of a row's scale otherwise. Nil when the
    /// calibration set is too small for that level (⌈(n+1)·level⌉ > n) or the level is invalid.
    public func scoreQuantile(level: Double) -> Double? {
        guard level > 0, level < 1 else { return nil }
        let rank = Int(((Double(count) + 1) * level).rounded(.up))
        guard rank >= 1, rank <= count else { return nil }
        return scores[rank - 1]
    }

    /// The half-width on the raw scale of a row with raw score `raw` and features `feature(f)`,
    /// given the level's `scoreQuantile`.
    @inlinable
    public func halfWidth(quantile: Double, raw: Double, feature: (Int) -> Double) -> Double {
        guard let errorScale else { return quantile }
        return quantile * errorScale.scale(raw: raw, feature: feature)
    }
}
