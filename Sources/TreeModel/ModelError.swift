import LoupeUtilities

/// The one error type of TreeModel: a model file that cannot be read, or a model that is not valid.
public struct ModelError: CodedError {
    /// What kind of failure this is.
    public typealias Code = ErrorCode<ModelError>

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `model <code>: <message>`.
    public static let descriptionPrefix: String? = "model"
}

extension ErrorCode where Owner == ModelError {
    /// Not a Loupe model file (wrong magic).
    public static var notAModel: Self { Self(name: "not a model") }
    /// A format version this build cannot read.
    public static var unsupportedVersion: Self { Self(name: "unsupported version") }
    /// The file ends early or its checksum does not match.
    public static var corrupt: Self { Self(name: "corrupt") }
    /// The bytes decode but describe an impossible model (bad child index, unknown feature, …).
    public static var invalid: Self { Self(name: "invalid") }
}
