/// The one error type of TreeInference: a model that cannot be compiled.
public struct InferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Equatable, Hashable, CustomStringConvertible {
        let name: String
        /// The ensemble is not a valid model (bad child index, unknown feature, arrays of different lengths, …).
        public static let invalidModel = Code(name: "invalid model")
        /// The configuration asks for something this machine cannot do (a kernel path its CPU lacks, …).
        public static let unsupported = Code(name: "unsupported")
        public var description: String { name }
    }

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "inference \(code): \(message)" }
}
