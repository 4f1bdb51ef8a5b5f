/// The one error type of TreeModel: a model file that cannot be read, or a model that is not valid.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Equatable, Hashable, CustomStringConvertible {
        let name: String
        /// Not a Loupe model file (wrong magic).
        public static let notAModel = Code(name: "not a model")
        /// A format version this build cannot read.
        public static let unsupportedVersion = Code(name: "unsupported version")
        /// The file ends early or its checksum does not match.
        public static let corrupt = Code(name: "corrupt")
        /// The bytes decode but describe an impossible model (bad child index, unknown feature, …).
        public static let invalid = Code(name: "invalid")
        public var description: String { name }
    }

    public let code: Code
    /// What was wrong and where.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "model \(code): \(message)" }
}
