import NIOCore

/// Closes a connection once the replies already written have gone out: NIO's close fails
/// writes still queued, which would cut a large last reply short. Record every write's future;
/// writes complete in order, so the last one's completion means all are out.
public struct PendingClose {
    private var lastWrite: EventLoopFuture<Void>?

    public init() {}

    /// Remembers `write` as the latest write.
    public mutating func wrote(_ write: EventLoopFuture<Void>) {
        lastWrite = write
    }

    /// Closes `mode` after the last write. Closing only the output keeps reading (what arrives
    /// is dropped by the handler) so the peer's unread calls do not make the kernel reset the
    /// connection; the channel closes when the peer closes its side.
    public func close(_ mode: ConnectionClose, context: ChannelHandlerContext) {
        let channel = context.channel
        let close: @Sendable () -> Void
        switch mode {
        case .output:
            close = { channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) } }
            context.read()
        case .all:
            close = { channel.close(promise: nil) }
        }
        guard let lastWrite else { return close() }
        lastWrite.whenComplete { _ in close() }
    }
}
