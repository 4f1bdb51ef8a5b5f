import Dispatch
import LoupeProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking TCP socket for sending raw (and broken) bytes to a server under test.
/// Reads block a dispatch thread, not Swift concurrency's few cooperative threads (which the
/// server under test needs).
public final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    /// Connects to 127.0.0.1:`port` from `source` (another loopback address, e.g. 127.0.0.2,
    /// stands for a second client machine); reads time out after `timeout` seconds.
    public init(port: Int, timeout: Int = 10, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw ProtocolError(code: .unavailable, message: "cannot bind to \(source)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw ProtocolError(code: .unavailable, message: "cannot connect to 127.0.0.1:\(port)")
        }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends bytes (errors are ignored: the peer may have closed).
    public func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a buffer's readable bytes.
    public func send(_ buffer: ByteBuffer) { send(Array(buffer.readableBytesView)) }

    /// Closes the sending side (a FIN, as `nc -N` sends after its last request); reading goes on.
    public func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Everything received until the peer closes (or the read timeout).
    public func readUntilClosed() async -> [UInt8] { await offloaded { $0.readUntilClosedBlocking() } }

    /// Reads one whole frame, or nil when the peer closes first.
    public func readFrame() async -> Frame? { await offloaded { $0.readFrameBlocking() } }

    /// Sends a Hello with `token` and returns the reply.
    public func handshake(token: String) async throws -> Frame? {
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = token
        send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
        return await readFrame()
    }

    private func offloaded<T: Sendable>(_ body: @escaping @Sendable (RawConnection) -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body(self)) }
        }
    }

    private func readUntilClosedBlocking() -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    private func readFrameBlocking() -> Frame? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1)
        // One byte at a time: never read past the frame (the next may belong to a later read).
        while true {
            if bytes.count >= 4 {
                let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
                if bytes.count == 4 + length {
                    var buffer = ByteBuffer(bytes: bytes[4...])
                    guard let header = buffer.readFrameHeader(), let payload = buffer.readSlice(length: length - 16) else {
                        return nil
                    }
                    return Frame(header: header, payload: payload)
                }
                if length < 16 { return nil }
                let want = 4 + length - bytes.count
                chunk = [UInt8](repeating: 0, count: min(want, 65536))
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count < 4 { chunk = [UInt8](repeating: 0, count: 4 - bytes.count) }
        }
    }

    /// The status code of an error frame (nil for anything else).
    public static func status(_ frame: Frame?) -> StatusCode? {
        guard let frame, frame.header.flags.contains(.error),
            let status = try? frame.decode(Loupe_V1_Status.self)
        else { return nil }
        return StatusCode(wireValue: status.code.rawValue)
    }
}
