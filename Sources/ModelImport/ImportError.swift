/// The one error type of ModelImport: a model file from another library that cannot be read,
/// or that describes something Loupe cannot score the same way.
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Equatable, Hashable, CustomStringConvertible {
        let name: String
        /// The file is not a model of the named library, or it is damaged.
        public static let malformed = Code(name: "malformed")
        /// A valid model that uses something Loupe does not import (several outputs, linear trees, DART, …).
        public static let unsupported = Code(name: "unsupported")
        /// The model's features cannot be matched to a diamond's.
        public static let features = Code(name: "features")
        public var description: String { name }
    }

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "import \(code): \(message)" }
}
