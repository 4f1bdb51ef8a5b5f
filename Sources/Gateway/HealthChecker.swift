import AsyncTimeout
import Logging
import LoupeProtocol
import NIOCore
import TokenStore

/// Probes one backend every `interval`: a Health call over a connection authenticated with
/// the internal secret (kept open between probes). A reply saying `ready` marks the backend
/// healthy; an error, a `ready: false` or no reply within `timeout` marks it unhealthy — so a
/// backend that died drops out of routing and rejoins once it answers again.
final class HealthChecker: Sendable {
    let backend: Backend
    private let eventLoop: any EventLoop
    private let internalSecret: String
    private let interval: TimeAmount
    private let timeout: TimeAmount
    private let logger: Logger
    /// The probe connection, kept between probes (on `eventLoop`).
    private let box: NIOLoopBoundBox<BackendConnection?>

    init(backend: Backend, eventLoop: any EventLoop, internalSecret: String, interval: TimeAmount, timeout: TimeAmount,
         logger: Logger) {
        self.backend = backend
        self.eventLoop = eventLoop
        self.internalSecret = internalSecret
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
        box = NIOLoopBoundBox.makeEmptyBox(valueType: BackendConnection.self, eventLoop: eventLoop)
    }

    /// Probes until cancelled.
    func run() async {
        while !Task.isCancelled {
            await check()
            try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
        }
        await stop()
    }

    /// One probe; updates the backend's health.
    @discardableResult
    func check() async -> Bool {
        let epoch = backend.failureEpoch
        let (healthy, why) = await probe()
        if backend.probed(healthy: healthy, since: epoch) {
            if healthy {
                logger.notice("model server healthy", metadata: ["backend": "\(backend.address)"])
            } else {
                logger.warning("model server unhealthy", metadata: ["backend": "\(backend.address)", "reason": "\(why)"])
            }
        }
        return healthy
    }

    private func probe() async -> (Bool, String) {
        if let local = backend.local {
            return local.isReady() ? (true, "") : (false, "the in-process model server is not ready")
        }
        let promise = eventLoop.makePromise(of: Frame.self)
        let box = box
        let backend = backend
        let secret = internalSecret
        let logger = logger
        eventLoop.execute {
            if box.value?.isClosed ?? true {
                box.value = BackendPools.connect(
                    to: backend, actingFor: nil, internalSecret: secret, eventLoop: promise.futureResult.eventLoop,
                    logger: logger, onClose: { _ in })
            }
            box.value?.send(
                Frame(header: .request(.health, requestID: 0), payload: ByteBuffer()), .local(promise), received: .now())
        }
        let future = promise.futureResult
        do {
            let frame = try await withTimeout(timeout) { try await future.get() }
            let health = try frame.decode(Loupe_V1_HealthResponse.self)
            return health.ready ? (true, "") : (false, health.message.isEmpty ? "not ready" : health.message)
        } catch {
            if error is TimeoutError { await stop() }
            return (false, "\(error)")
        }
    }

    /// Closes the probe connection.
    func stop() async {
        let box = box
        try? await eventLoop.submit {
            box.value?.closeChannel()
            box.value = nil
        }.get()
    }
}
