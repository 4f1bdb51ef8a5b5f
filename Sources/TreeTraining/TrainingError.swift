/// The one error type of TreeTraining.
public struct TrainingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Equatable, Hashable, CustomStringConvertible {
        let name: String
        /// A parameter is out of range.
        public static let invalidConfiguration = Code(name: "invalid configuration")
        /// The data cannot train a model (too few rows, non-finite values, non-positive prices on a log target).
        public static let invalidData = Code(name: "invalid data")
        public var description: String { name }
    }

    public let code: Code
    /// What was wrong, where, and what was expected.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
