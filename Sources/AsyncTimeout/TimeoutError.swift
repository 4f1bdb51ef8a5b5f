import NIOCore

/// A call that did not answer in time (`withTimeout`).
public struct TimeoutError: Error, CustomStringConvertible {
    /// How long it waited.
    public var timeout: TimeAmount
    public var description: String { "no answer within \(timeout.nanoseconds / 1_000_000) ms" }
}
