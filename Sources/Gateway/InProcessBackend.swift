import LoupeProtocol
import NIOCore

/// A model server in the gateway's own process (`loupe serve`): calls are handed to it as
/// frames, with the partner attached, without a socket — the same checks at the gateway, two
/// loopback hops fewer per call. The CLI adapts `ModelServer` to it (the gateway does not
/// depend on the model server).
public protocol InProcessBackend: Sendable {
    /// Whether it can answer calls now (the gateway's health checks ask this).
    func isReady() -> Bool

    /// Answers a request frame for the partner `actingFor`; the future completes on `eventLoop`
    /// with the reply frame (a response, or an error frame).
    func answer(_ frame: Frame, actingFor: Loupe_V1_ActingFor, on eventLoop: any EventLoop) -> EventLoopFuture<Frame>
}
