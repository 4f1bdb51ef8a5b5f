/// The one error type of `LoupeProtocol`: a status code, a message a person can act on, the
/// optional details a `Status` frame carries, and the underlying cause if there is one.
///
/// It converts losslessly to and from the `loupe.v1.Status` payload of an error frame
/// (`init(status:)`, `status`), so a server throws it and a client receives the same thing.
public struct ProtocolError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public var code: StatusCode
    /// What was wrong, where, and what was expected: "row 17: carat must be > 0, got -1".
    public var message: String
    /// For `resourceExhausted` / `unavailable`: wait at least this long before retrying
    /// (0 = no advice).
    public var retryAfterMilliseconds: UInt32
    /// For `invalidArgument` on a single-item call: one entry per bad field.
    public var fieldViolations: [Loupe_V1_FieldViolation]
    /// For `invalidArgument` on a call with rows that was refused whole: one entry per bad row.
    public var rowErrors: [Loupe_V1_RowError]
    /// The error that led to this one, if any (not sent on the wire).
    public var cause: (any Error & Sendable)?

    /// Creates an error from its parts.
    public init(
        code: StatusCode,
        message: String,
        retryAfterMilliseconds: UInt32 = 0,
        fieldViolations: [Loupe_V1_FieldViolation] = [],
        rowErrors: [Loupe_V1_RowError] = [],
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.fieldViolations = fieldViolations
        self.rowErrors = rowErrors
        self.cause = cause
    }

    /// `CODE: message`, then the cause if there is one.
    public var description: String {
        var text = "\(code): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}
