import LoupeUtilities

/// The one error type of TreeTraining.
public struct TrainingError: CodedError {
    /// What kind of failure this is.
    public typealias Code = ErrorCode<TrainingError>

    public let code: Code
    /// What was wrong, where, and what was expected.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message alone.
    public static let descriptionPrefix: String? = nil
}

extension ErrorCode where Owner == TrainingError {
    /// A parameter is out of range.
    public static var invalidConfiguration: Self { Self(name: "invalid configuration") }
    /// The data cannot train a model (too few rows, non-finite values, non-positive prices on a log target).
    public static var invalidData: Self { Self(name: "invalid data") }
}
