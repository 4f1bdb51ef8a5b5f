import Foundation
import TreeTraining

/// What a challenger that beats the champion overall must also not do on the holdout both were
/// measured on (each configurable; each names itself in the outcome when it fires):
///
/// - **decile regression**: in any price decile with at least `minimumDecileRows` rows, its RMSE
///   may exceed the champion's by at most `decileRegressionBudget` (a model better on average but
///   much worse for expensive stones is not better for the partners pricing them);
/// - **coverage**: its price ranges must cover the holdout at their level within
///   `coverageTolerance` (widened for a small holdout by 2.5 binomial standard deviations).
public struct QualityPolicy: Sendable, Equatable {
    public var decileRegressionBudget: Double
    public var minimumDecileRows: Int
    public var coverageTolerance: Double
    /// On the reference set, the challenger's RMSE may exceed the champion's by at most this.
    public var referenceRegressionBudget: Double

    public init(
        decileRegressionBudget: Double = 0.15, minimumDecileRows: Int = 30, coverageTolerance: Double = 0.05,
        referenceRegressionBudget: Double = 0.05
    ) {
        self.decileRegressionBudget = decileRegressionBudget
        self.minimumDecileRows = minimumDecileRows
        self.coverageTolerance = coverageTolerance
        self.referenceRegressionBudget = referenceRegressionBudget
    }

    /// The reference-set guardrail: nil when it holds or there is no reference set.
    func referenceViolation(_ rmse: (challenger: Double, champion: Double)?, rows: Int) -> (Guardrail, String)? {
        guard let rmse, rmse.challenger > rmse.champion * (1 + referenceRegressionBudget) else { return nil }
        return (.referenceRegression,
                "reference-regression: on the \(rows) rows of the reference set the challenger's RMSE is "
                    + "$\(Self.format(rmse.challenger, 2)) against the champion's $\(Self.format(rmse.champion, 2)) (+"
                    + "\(Self.format((rmse.challenger / rmse.champion - 1) * 100, 1))%, allowed "
                    + "\(Self.format(referenceRegressionBudget * 100, 0))%; if the market moved, refresh the reference set)")
    }

    /// The first guardrail the challenger breaks, with why (nil: none).
    func violation(challenger: EvaluationReport, champion: EvaluationReport?) -> (Guardrail, String)? {
        if let champion {
            for (mine, theirs) in zip(challenger.deciles, champion.deciles) where mine.metrics.rows >= minimumDecileRows {
                let limit = theirs.metrics.rmse * (1 + decileRegressionBudget)
                guard mine.metrics.rmse > limit else { continue }
                return (.decileRegression,
                        "decile-regression: in price decile \(mine.decile) ($\(Self.format(mine.minPrice))–"
                            + "$\(Self.format(mine.maxPrice)), \(mine.metrics.rows) rows) the challenger's RMSE is "
                            + "$\(Self.format(mine.metrics.rmse, 2)) against the champion's $\(Self.format(theirs.metrics.rmse, 2)) "
                            + "(+\(Self.format((mine.metrics.rmse / theirs.metrics.rmse - 1) * 100, 1))%, allowed "
                            + "\(Self.format(decileRegressionBudget * 100, 0))%)")
            }
        }
        if let ranges = challenger.ranges, challenger.metrics.rows > 0 {
            let n = Double(challenger.metrics.rows)
            let slack = max(coverageTolerance, 2.5 * (ranges.level * (1 - ranges.level) / n).squareRoot())
            if abs(ranges.coverage - ranges.level) > slack {
                return (.coverage,
                        "coverage: the challenger's \(Self.format(ranges.level * 100, 0))% ranges covered "
                            + "\(Self.format(ranges.coverage * 100, 1))% of the holdout (allowed "
                            + "\(Self.format((ranges.level - slack) * 100, 1))–\(Self.format((ranges.level + slack) * 100, 1))%)")
            }
        }
        return nil
    }

    static func format(_ v: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", v) }
}
