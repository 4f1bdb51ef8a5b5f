import NIOCore
import SwiftProtobuf

/// Bytes for SwiftProtobuf that live in a `ByteBuffer`, so messages are decoded straight from
/// a received buffer and encoded straight into a frame's buffer, with no intermediate array.
///
/// When SwiftProtobuf creates one to serialize into, it reserves `frameHeadroom` bytes in front
/// for the frame's length and header; `count` and the unsafe views cover the payload only.
struct FrameBytes: SwiftProtobufContiguousBytes {
    /// Headroom bytes followed by the payload bytes.
    private(set) var buffer: ByteBuffer
    /// Bytes in front of the payload.
    let headroom: Int

    /// Room for the length field and the header.
    static let frameHeadroom = FrameHeader.lengthFieldSize + FrameHeader.size

    /// A view of a received payload, for decoding.
    init(payload: ByteBuffer) {
        self.buffer = payload
        self.headroom = 0
    }

    init(repeating byte: UInt8, count: Int) {
        var buffer = ByteBufferAllocator().buffer(capacity: Self.frameHeadroom + count)
        buffer.writeRepeatingByte(0, count: Self.frameHeadroom)
        buffer.writeRepeatingByte(byte, count: count)
        self.buffer = buffer
        self.headroom = Self.frameHeadroom
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        var buffer = ByteBufferAllocator().buffer(capacity: Self.frameHeadroom + sequence.underestimatedCount)
        buffer.writeRepeatingByte(0, count: Self.frameHeadroom)
        buffer.writeBytes(sequence)
        self.buffer = buffer
        self.headroom = Self.frameHeadroom
    }

    var count: Int { buffer.readableBytes - headroom }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes { bytes in
            try body(UnsafeRawBufferPointer(rebasing: bytes[(bytes.startIndex + headroom)...]))
        }
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let headroom = self.headroom
        return try buffer.withUnsafeMutableReadableBytes { bytes in
            try body(UnsafeMutableRawBufferPointer(rebasing: bytes[(bytes.startIndex + headroom)...]))
        }
    }

    /// The payload alone, as a buffer.
    var payload: ByteBuffer {
        var payload = buffer
        payload.moveReaderIndex(forwardBy: headroom)
        return payload
    }

    /// The whole frame: the headroom filled in with the length and `header`, then the payload.
    /// Only for bytes SwiftProtobuf serialized into (headroom == frameHeadroom).
    consuming func frame(header: FrameHeader) -> ByteBuffer {
        precondition(headroom == Self.frameHeadroom, "frame(header:) needs the frame headroom")
        var frame = buffer
        let start = frame.readerIndex
        frame.setInteger(UInt32(FrameHeader.size + count), at: start, endianness: .big)
        frame.setFrameHeader(header, at: start + FrameHeader.lengthFieldSize)
        return frame
    }
}
