import LoupeProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback socket for the echo baseline (no event loop between the measurements).
final class BlockingSocket: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw BenchError("cannot connect to the echo server") }
    }

    deinit { close(fd) }

    /// Sends a frame and reads one whole frame back.
    func call(_ bytes: ByteBuffer) throws -> Frame {
        let sent = bytes.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.readableBytes else { throw BenchError("send failed") }
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if buffer.readableBytes >= 4, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
                buffer.readableBytes >= 4 + Int(length)
            {
                buffer.moveReaderIndex(forwardBy: 4)
                guard let header = buffer.readFrameHeader(),
                      let payload = buffer.readSlice(length: Int(length) - FrameHeader.size)
                else { throw BenchError("bad reply frame") }
                return Frame(header: header, payload: payload)
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BenchError("the server closed the connection") }
            buffer.writeBytes(chunk[0..<n])
        }
    }

    func roundTrip(_ bytes: ByteBuffer, expect: Int) throws {
        let sent = bytes.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.readableBytes else { throw BenchError("echo send failed") }
        var received = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while received < expect {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BenchError("echo connection closed") }
            received += n
        }
    }
}
