/// A port the server cannot listen on: out of range, or refused by the system (in use, no
/// permission). Names the component and the address, so an operator running several knows
/// which option to change.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// "the model server", "the model server's metrics endpoint".
    public var component: String
    public var host: String
    public var port: Int
    /// The system's refusal, or nil for a port out of range.
    public var cause: (any Error & Sendable)?

    public init(component: String, host: String, port: Int, cause: (any Error & Sendable)? = nil) {
        self.component = component
        self.host = host
        self.port = port
        self.cause = cause
    }

    /// Throws for a port outside 0...65535 (0: any free port), which the socket layer would
    /// otherwise truncate to 16 bits (70000 became 4464).
    public static func checkRange(_ port: Int, component: String, host: String) throws {
        guard (0...65535).contains(port) else { throw ListenError(component: component, host: host, port: port) }
    }

    public var description: String {
        guard let cause else {
            return "\(component): port \(port) is out of range (1-65535, or 0 for any free port)"
        }
        return "\(component) cannot listen on \(host):\(port): \(cause)"
    }
}
