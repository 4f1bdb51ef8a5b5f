/// The error thrown by the cleaning module: a code to branch on and a message a person can
/// act on. Problems with single rows are not errors; they land in the quarantine and the
/// report. An error means the input as a whole cannot be cleaned.
public struct CleaningError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Sendable {
            case emptyInput, malformedHeader, missingColumns, duplicateColumns, unreadableFile
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The input has no header line: it is empty, or holds only blank lines.
        public static let emptyInput = Code(.emptyInput)
        /// The header line is not well-formed CSV (e.g. a quote that never closes).
        public static let malformedHeader = Code(.malformedHeader)
        /// One or more required columns are not in the header.
        public static let missingColumns = Code(.missingColumns)
        /// A required column appears more than once in the header.
        public static let duplicateColumns = Code(.duplicateColumns)
        /// The input file could not be opened or read.
        public static let unreadableFile = Code(.unreadableFile)

        /// The code's name, e.g. `missingColumns`.
        public var description: String { wrapped.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// What was wrong, where, and what was expected.
    public var message: String
    /// The underlying error, if there was one.
    public var cause: (any Error & Sendable)?

    /// An error with a code, a message and optionally its cause.
    public init(code: Code, message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `code: message`, with the cause if there is one.
    public var description: String {
        if let cause { return "\(code): \(message) (\(cause))" }
        return "\(code): \(message)"
    }
}
