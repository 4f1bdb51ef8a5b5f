import Logging
import LoupeProtocol
import NIOCore
import NIOPosix

/// The backend connections of one event loop, by backend and token: calls from every client
/// connection of a token on this loop share a few connections to each backend, opened on
/// demand (so a call never changes threads on its way through the gateway). Lives on its
/// event loop only.
final class BackendPools {
    private let eventLoop: any EventLoop
    private let internalSecret: String
    private let connectionsPerToken: Int
    private let logger: Logger
    private var pools: [Int: [String: [BackendConnection]]] = [:]

    init(eventLoop: any EventLoop, internalSecret: String, connectionsPerToken: Int, logger: Logger) {
        self.eventLoop = eventLoop
        self.internalSecret = internalSecret
        self.connectionsPerToken = max(1, connectionsPerToken)
        self.logger = logger
    }

    /// A connection to `backend` for the token `actingFor` names: the least busy open one, or
    /// a new one while all are at the backend's in-flight limit and there is room for more.
    func connection(to backend: Backend, for actingFor: Loupe_V1_ActingFor) -> BackendConnection {
        let key = actingFor.tokenID
        var open = pools[backend.index]?[key] ?? []
        if let least = open.min(by: { $0.inFlight < $1.inFlight }),
            least.inFlight < least.maxInFlight || open.count >= connectionsPerToken
        {
            return least
        }
        let connection = connect(to: backend, actingFor: actingFor) { [weak self] closed in
            self?.remove(closed, backend: backend.index, key: key)
        }
        open.append(connection)
        pools[backend.index, default: [:]][key] = open
        return connection
    }

    private func remove(_ connection: BackendConnection, backend: Int, key: String) {
        guard var open = pools[backend]?[key] else { return }
        open.removeAll { $0 === connection }
        pools[backend]?[key] = open.isEmpty ? nil : open
    }

    /// Opens a connection whose handshake carries `actingFor` (nil: the gateway's own).
    func connect(
        to backend: Backend, actingFor: Loupe_V1_ActingFor?, onClose: @escaping (BackendConnection) -> Void
    ) -> BackendConnection {
        Self.connect(
            to: backend, actingFor: actingFor, internalSecret: internalSecret, eventLoop: eventLoop, logger: logger,
            onClose: onClose)
    }

    /// Opens a connection on `eventLoop`; frames sent before it is ready wait in its queue.
    static func connect(
        to backend: Backend, actingFor: Loupe_V1_ActingFor?, internalSecret: String, eventLoop: any EventLoop,
        logger: Logger, onClose: @escaping (BackendConnection) -> Void
    ) -> BackendConnection {
        eventLoop.preconditionInEventLoop()
        let connection = BackendConnection(
            backend: backend, actingFor: actingFor, internalSecret: internalSecret, logger: logger, onClose: onClose)
        let bound = NIOLoopBound(connection, eventLoop: eventLoop)
        // Replies can be as large as the largest frame a backend sends (a 100k-row batch is ~2.4 MB).
        let limits = FrameLimits(
            maxFrameSizeBeforeHandshake: 1 << 20, maxFrameSize: 256 << 20, frameDeadlineBeforeHandshake: .seconds(30),
            frameDeadline: .seconds(300))
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let decoder = FrameDecoder(limits: limits)
                    decoder.handshakeCompleted()
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: backend.address.host, port: backend.address.port)
            .whenFailure { error in bound.value.connectFailed(error) }
        return connection
    }
}

@available(*, unavailable)
extension BackendPools: Sendable {}

@available(*, unavailable)
extension BackendConnection: Sendable {}
