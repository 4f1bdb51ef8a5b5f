import LoupeUtilities

/// The one error type of TreeInference: a model that cannot be compiled.
public struct InferenceError: CodedError {
    /// What kind of failure this is.
    public typealias Code = ErrorCode<InferenceError>

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `inference <code>: <message>`.
    public static let descriptionPrefix: String? = "inference"
}

extension ErrorCode where Owner == InferenceError {
    /// The ensemble is not a valid model (bad child index, unknown feature, arrays of different lengths, …).
    public static var invalidModel: Self { Self(name: "invalid model") }
    /// The configuration asks for something this machine cannot do (a kernel path its CPU lacks, …).
    public static var unsupported: Self { Self(name: "unsupported") }
}
