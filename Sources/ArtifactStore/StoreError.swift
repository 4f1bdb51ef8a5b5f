/// The one error type of ArtifactStore: what kind of failure, what was wrong and where, and the
/// underlying error (a system call, zstd, JSON) when there is one.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: match on the static members, not exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// A dataset or model name that does not match `[a-z0-9][a-z0-9._-]{0,63}`.
        public static let invalidName = Code(name: "invalid name")
        /// An argument the store cannot accept (a non-finite metric, a report that is not JSON, …).
        public static let invalidArgument = Code(name: "invalid argument")
        /// The blob, manifest or version asked for does not exist.
        public static let notFound = Code(name: "not found")
        /// A blob whose bytes do not decompress or do not hash to its name. Never returned as data.
        public static let corruptBlob = Code(name: "corrupt blob")
        /// A manifest, alias file or store marker that is not valid JSON of the expected shape.
        public static let corruptManifest = Code(name: "corrupt manifest")
        /// The disk (or quota) is full; nothing was changed.
        public static let diskFull = Code(name: "disk full")
        /// Any other I/O failure from the operating system.
        public static let io = Code(name: "I/O error")
        /// `rollback` found no earlier version in the alias history.
        public static let noRollbackTarget = Code(name: "no rollback target")
        /// The directory holds a store in a format this build does not understand.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// A write to a store opened read-only (`ArtifactStore.openReadOnly`).
        public static let readOnly = Code(name: "read-only")
        /// A conditional write lost: another writer changed the document first (object-store
        /// backends, whose lock is a lease that a stalled holder can lose).
        public static let conflict = Code(name: "conflict")

        public var description: String { name }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What was wrong, where, and what was expected.
    public let message: String
    /// The underlying error, if any.
    public let cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "store: \(code): \(message) (\(cause))" }
        return "store: \(code): \(message)"
    }
}
