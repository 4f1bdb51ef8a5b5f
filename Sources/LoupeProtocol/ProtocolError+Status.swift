extension ProtocolError {
    /// Reads the `Status` of an error frame. A status whose code is `OK` (which no peer should
    /// send on an error frame) becomes `unknown`, so the result is always an error.
    public init(status: Loupe_V1_Status) {
        var code = StatusCode(wireValue: status.code.rawValue)
        if code == .ok { code = .unknown }
        self.init(
            code: code,
            message: status.message,
            retryAfterMilliseconds: status.retryAfterMs,
            fieldViolations: status.fieldViolations,
            rowErrors: status.rowErrors
        )
    }

    /// The `Status` payload for an error frame. The cause stays local; the message is cut to
    /// `ProtocolError.maximumMessageBytes` bytes of UTF-8 so a status frame stays small.
    public var status: Loupe_V1_Status {
        var status = Loupe_V1_Status()
        status.code = Loupe_V1_StatusCode(rawValue: Int(code.rawValue)) ?? .unknown
        status.message = Self.truncated(message)
        status.retryAfterMs = retryAfterMilliseconds
        status.fieldViolations = fieldViolations
        status.rowErrors = rowErrors
        return status
    }

    /// The longest `message` sent in a `Status`, in bytes of UTF-8.
    public static let maximumMessageBytes = 1024

    static func truncated(_ message: String) -> String {
        guard message.utf8.count > maximumMessageBytes else { return message }
        var cut = ""
        var used = 0
        let ellipsis = "…"
        let budget = maximumMessageBytes - ellipsis.utf8.count
        for character in message {
            let size = character.utf8.count
            if used + size > budget { break }
            cut.append(character)
            used += size
        }
        return cut + ellipsis
    }
}
