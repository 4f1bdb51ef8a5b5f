import LoupeUtilities

/// The one error type of ModelImport: a model file from another library that cannot be read,
/// or that describes something Loupe cannot score the same way.
public struct ImportError: CodedError {
    /// What kind of failure this is.
    public typealias Code = ErrorCode<ImportError>

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `import <code>: <message>`.
    public static let descriptionPrefix: String? = "import"
}

extension ErrorCode where Owner == ImportError {
    /// The file is not a model of the named library, or it is damaged.
    public static var malformed: Self { Self(name: "malformed") }
    /// A valid model that uses something Loupe does not import (several outputs, linear trees, DART, …).
    public static var unsupported: Self { Self(name: "unsupported") }
    /// The model's features cannot be matched to a diamond's.
    public static var features: Self { Self(name: "features") }
}
