/// A guardrail an operator may override for one run, recorded in the outcome.
public enum Guardrail: String, Sendable, Codable, CaseIterable {
    /// The batch's prices sit far from production's predictions as a whole.
    case labelShift = "label-shift"
    /// The challenger is much worse than the champion in some price decile.
    case decileRegression = "decile-regression"
    /// The challenger's price ranges miss their level on the holdout.
    case coverage
    /// The challenger is worse than the champion on the reference set.
    case referenceRegression = "reference-regression"
}
