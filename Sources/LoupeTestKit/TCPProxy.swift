import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder on loopback that a test can cut off and restore: the network between a
/// process and a service it needs (an S3 endpoint) failing and coming back, without stopping
/// the service (moto keeps its state only while it runs).
///
/// `cut()` closes every forwarded connection and stops listening, so new connections are
/// refused; `restore()` listens again on the same port. Plain sockets and a thread per
/// direction: a test forwards a handful of connections.
public final class TCPProxy: Sendable {
    /// The port clients connect to.
    public let port: Int
    private let targetPort: Int
    private struct State {
        var listener: Int32 = -1
        var open: Set<Int32> = []
    }
    private let state = Mutex(State())

    /// Forwards `127.0.0.1:<port>` (a free port) to `127.0.0.1:targetPort`.
    public init(toPort targetPort: Int) throws {
        self.targetPort = targetPort
        let fd = try Self.listen(port: 0)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        state.withLock { $0.listener = fd }
        startAccepting(fd)
    }

    /// Drops every forwarded connection and refuses new ones.
    public func cut() {
        // Under the lock, so a pump cannot close (and the process reuse) a descriptor first.
        state.withLock { state in
            if state.listener >= 0 {
                shutdown(state.listener, Int32(SHUT_RDWR))  // wakes the blocked accept
                close(state.listener)
                state.listener = -1
            }
            for fd in state.open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Listens again on the same port.
    public func restore() throws {
        let fd = try Self.listen(port: port)
        state.withLock { $0.listener = fd }
        startAccepting(fd)
    }

    deinit { cut() }

    private static func listen(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let code = errno
            close(fd)
            throw ProxyError("cannot listen on 127.0.0.1:\(port): errno \(code)")
        }
        return fd
    }

    private func startAccepting(_ listener: Int32) {
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // cut
                }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(targetPort).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                let live = state.withLock { state -> Bool in
                    guard state.listener == listener, connected == 0 else { return false }
                    state.open.formUnion([client, upstream])
                    return true
                }
                guard live else {
                    close(client)
                    close(upstream)
                    continue
                }
                let pair = Pair(client, upstream)
                Thread { [self] in pump(from: client, to: upstream, pair) }.start()
                Thread { [self] in pump(from: upstream, to: client, pair) }.start()
            }
        }.start()
    }

    /// One forwarded connection's two sockets, closed once both directions have ended.
    private final class Pair: Sendable {
        let fds: (Int32, Int32)
        let ended = Atomic<Int>(0)
        init(_ a: Int32, _ b: Int32) { fds = (a, b) }
    }

    private func pump(from source: Int32, to sink: Int32, _ pair: Pair) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(sink, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m < 0, errno == EINTR { continue }
                if m <= 0 { break loop }
                sent += m
            }
        }
        // Either side ending ends the connection (an HTTP client reads to the end or resets).
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(sink, Int32(SHUT_RDWR))
        if pair.ended.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
            state.withLock { state in
                state.open.subtract([pair.fds.0, pair.fds.1])
                close(pair.fds.0)
                close(pair.fds.1)
            }
        }
    }
}

/// A proxy that could not start.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
