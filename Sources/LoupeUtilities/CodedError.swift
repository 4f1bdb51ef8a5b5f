/// The shape of the error types of the model modules (`ModelError`, `TrainingError`,
/// `InferenceError`, `ImportError`): a code to branch on and a message that says what was
/// wrong and where. Conforming types declare their codes as constrained extensions of
/// `ErrorCode` and get `description` from here.
public protocol CodedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    var code: ErrorCode<Self> { get }
    /// What was wrong and where.
    var message: String { get }
    /// The word that opens `description` ("model" gives "model corrupt: …"); nil for the
    /// message alone.
    static var descriptionPrefix: String? { get }
}

extension CodedError {
    public var description: String {
        guard let prefix = Self.descriptionPrefix else { return message }
        return "\(prefix) \(code): \(message)"
    }
}

/// A `CodedError`'s code: a name, typed by its error so codes of different modules never mix.
/// Extensible: match on the static members, not exhaustively.
public struct ErrorCode<Owner>: Sendable, Hashable, CustomStringConvertible {
    let name: String

    /// Only Loupe's own modules make codes.
    package init(name: String) { self.name = name }

    public var description: String { name }
}
