/// A request-log failure: what went wrong, where, and what was expected.
public struct RequestLogError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure it is; new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A bad argument: a duration, a method name, a URL, a time range.
        public static let invalidArgument = Code(name: "invalid argument")
        /// The database cannot be reached or refused the operation.
        public static let unavailable = Code(name: "unavailable")
        /// A segment or spill file is damaged (a truncated or corrupt record).
        public static let corrupt = Code(name: "corrupt")
        /// A file could not be read or written.
        public static let io = Code(name: "i/o")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        cause.map { "\(message): \($0)" } ?? message
    }
}
