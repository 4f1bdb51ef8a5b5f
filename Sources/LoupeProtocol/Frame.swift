import NIOCore

/// One protocol frame: its header and its payload (one serialized protobuf message, or a
/// `Status` on an error frame). On the wire it is preceded by its 4-byte big-endian length,
/// `FrameHeader.size + payload.readableBytes`.
public struct Frame: Sendable, Hashable {
    /// The fixed header.
    public var header: FrameHeader
    /// The payload bytes; usually a slice of the received buffer (no copy).
    public var payload: ByteBuffer

    /// Creates a frame from a header and an already serialized payload.
    public init(header: FrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// The value of the frame's length field: header plus payload bytes.
    public var length: Int { FrameHeader.size + payload.readableBytes }

    /// The largest payload a frame can carry: the length field is 32 bits.
    public static let maximumPayloadSize = Int(UInt32.max) - FrameHeader.size
}
