import DataCleaning
import Foundation
import TreeModel

/// The check new labelled rows pass before they may train a challenger: their prices are
/// compared with what production predicts for the same stones.
///
/// - **Label shift**: the batch's median of price ÷ production's prediction must lie within
///   `[1 / shiftBand, shiftBand]`. A batch outside (every price ×3, prices in another currency)
///   is refused whole, before it enters the dataset, unless the operator accepts it
///   (`accept: [.labelShift]`): a real market move that large is an operator's call.
/// - **Label outliers**: a row priced more than `outlierFactor` times above or below production's
///   prediction (a typo ×10, a missing digit) is set aside with its reason, like cleaning does;
///   the other rows are used.
public struct LabelPolicy: Sendable, Equatable {
    /// The band around 1 for the batch's median price ÷ production's prediction.
    public var shiftBand: Double
    /// A row this many times above or below production's prediction is a label outlier.
    public var outlierFactor: Double
    /// Fewer clean rows than this: the median is too noisy to judge a shift (outliers still are).
    public var minimumRowsForShift: Int

    public init(shiftBand: Double = 1.5, outlierFactor: Double = 3, minimumRowsForShift: Int = 20) {
        self.shiftBand = shiftBand
        self.outlierFactor = outlierFactor
        self.minimumRowsForShift = minimumRowsForShift
    }
}

/// What the label screen found in a batch of new rows.
public struct LabelScreen: Sendable {
    /// A row set aside as a label outlier.
    public struct Outlier: Sendable, Codable, Equatable {
        /// The record's number in the batch (1-based, as cleaning numbers rows).
        public var row: Int
        public var price: Double
        public var predicted: Double
        /// Why, for a person.
        public var reason: String
    }

    /// Rows set aside.
    public let outliers: [Outlier]
    /// Why the whole batch is refused for label shift (nil when it is not).
    public let shift: String?

    /// Screens `csv` (a batch of new rows with a header) against `production`.
    public init(_ csv: [UInt8], production: Ensemble, policy: LabelPolicy) throws {
        let table = try Cleaner.clean(csv: csv).clean
        let predicted = production.rawScores(columns: table.columns).map { production.target.price(fromRaw: $0) }
        let ratios = zip(table.price, predicted).map { $0 / $1 }
        // The batch's median price ÷ production's prediction.
        let medianRatio = ratios.isEmpty ? nil : ratios.sorted()[ratios.count / 2]
        var outliers: [Outlier] = []
        for i in 0..<table.count where ratios[i] > policy.outlierFactor || ratios[i] < 1 / policy.outlierFactor {
            outliers.append(Outlier(
                row: table.sourceRow[i], price: table.price[i], predicted: predicted[i],
                reason: "label_outlier: price $\(Self.format(table.price[i])) is \(Self.format(ratios[i], 2))× "
                    + "production's $\(Self.format(predicted[i])) (outside 1/\(Self.format(policy.outlierFactor, 1))×"
                    + "–\(Self.format(policy.outlierFactor, 1))×)"))
        }
        self.outliers = outliers
        if let median = medianRatio, table.count >= policy.minimumRowsForShift,
            median > policy.shiftBand || median < 1 / policy.shiftBand
        {
            shift = "label-shift: the new rows' median price is \(Self.format(median, 2))× what production predicts "
                + "for the same stones (allowed \(Self.format(1 / policy.shiftBand, 2))×–\(Self.format(policy.shiftBand, 2))×); "
                + "the batch was not used (accept it with --accept label-shift if the market really moved)"
        } else {
            shift = nil
        }
    }

    static func format(_ v: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", v) }
}
