import Foundation
import RequestLog

/// How a version priced stones whose sale prices came back: RMSE and MAPE of its prices against
/// the sold prices, and how often its range held the sold price.
public struct VersionAccuracy: Sendable, Hashable, Codable {
    public var version: Int
    /// Outcomes scored for this version.
    public var outcomes: Int
    /// Of those, the ones where this version answered the partner.
    public var served: Int
    public var rmse: Double
    /// Mean absolute percentage error, in percent.
    public var mape: Double
    /// Share of outcomes (with a range) whose sold price fell in the range, 0–1; nil without ranges.
    public var coverage: Double?

    /// Figures over `scores` (all of one version; nil when empty).
    public init?(version: Int, _ scores: some Collection<OutcomeScore>) {
        guard !scores.isEmpty else { return nil }
        self.version = version
        outcomes = scores.count
        served = scores.filter(\.served).count
        var squared = 0.0, percentage = 0.0, ranged = 0, covered = 0
        for s in scores {
            let error = s.price - s.soldPrice
            squared += error * error
            percentage += abs(error) / s.soldPrice
            if let low = s.low, let high = s.high {
                ranged += 1
                if s.soldPrice >= low && s.soldPrice <= high { covered += 1 }
            }
        }
        rmse = (squared / Double(scores.count)).squareRoot()
        mape = percentage / Double(scores.count) * 100
        coverage = ranged == 0 ? nil : Double(covered) / Double(ranged)
    }
}

/// Live accuracy from outcome scores.
public enum LiveAccuracy {
    /// Each version's figures over every outcome scored for it.
    public static func byVersion(_ scores: [OutcomeScore]) -> [Int: VersionAccuracy] {
        Dictionary(grouping: scores, by: \.modelVersion).compactMapValues { VersionAccuracy(version: $0[0].modelVersion, $0) }
    }

    /// `a` and `b` on the outcomes both were scored on (the fair comparison); nil when none.
    public static func paired(_ scores: [OutcomeScore], _ a: Int, _ b: Int) -> (a: VersionAccuracy, b: VersionAccuracy)? {
        let forA = Dictionary(scores.filter { $0.modelVersion == a }.map { ($0.outcomeID, $0) }, uniquingKeysWith: { x, _ in x })
        let forB = Dictionary(scores.filter { $0.modelVersion == b }.map { ($0.outcomeID, $0) }, uniquingKeysWith: { x, _ in x })
        let shared = forA.keys.filter { forB[$0] != nil }.sorted()
        guard let left = VersionAccuracy(version: a, shared.map { forA[$0]! }),
            let right = VersionAccuracy(version: b, shared.map { forB[$0]! })
        else { return nil }
        return (left, right)
    }
}
