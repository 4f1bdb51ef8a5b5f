import NIOCore
import Synchronization

/// Sent down every open connection when its listener drains: stop reading, answer the calls
/// in flight, close.
public struct DrainEvent: Sendable {
    public init() {}
}

/// The connections a listener accepted and has not seen close, and the graceful drain of them
/// that both the model server's and the gateway's shutdown perform.
public final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    public init() {}

    /// Tracks `channel` until it closes (call from the child channel initializer).
    public func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.channels.withLock { _ = $0.removeValue(forKey: id) }
        }
    }

    /// Connections open now (a closed connection leaves at once).
    public var count: Int { channels.withLock { $0.count } }

    /// Asks every open connection to drain (`DrainEvent`: each closes itself once its calls are
    /// answered) and waits until all have closed; those still open after `grace` are closed.
    public func drain(grace: TimeAmount) async {
        let open = channels.withLock { Array($0.values) }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(DrainEvent()) }
        let forceClose = Task {
            try await Task.sleep(nanoseconds: UInt64(max(0, grace.nanoseconds)))
            for channel in open { channel.close(promise: nil) }
        }
        for channel in open { try? await channel.closeFuture.get() }
        forceClose.cancel()
    }
}
