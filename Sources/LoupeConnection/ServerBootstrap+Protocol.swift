import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// The socket options of a binary-protocol listener (the model server's and the gateway's):
    /// a deep accept backlog, address reuse across restarts, no Nagle delay on small replies,
    /// bounded reads per wake-up, and half-closed input kept open so a client that sends FIN
    /// after its last request still gets its replies.
    public func protocolListenerOptions() -> ServerBootstrap {
        serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
    }
}
