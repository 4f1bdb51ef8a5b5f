import NIOCore

/// Writes `Frame`s as bytes (length, header, payload) without copying a large payload: the
/// length and header go in a small buffer of their own and the payload as it is, and NIO
/// writes both with one `writev`. `MessageToByteHandler(FrameEncoder())` copied every reply
/// into a fresh outbound buffer, 2.4 MB for a 100k-row BatchPredict reply. Small payloads are
/// copied in behind the header (one buffer is cheaper than two for a Predict reply).
public final class FrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Frame
    public typealias OutboundOut = ByteBuffer

    /// Payloads up to this size are copied behind the header; larger ones are passed on.
    public static let copiedPayloadBytes = 4096

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        let payload = frame.payload.readableBytes
        guard payload <= Frame.maximumPayloadSize else {
            let error = ProtocolError(
                code: .resourceExhausted, message: "a \(payload)-byte payload does not fit a frame's 32-bit length")
            promise?.fail(error)
            context.fireErrorCaught(error)
            return
        }
        let headSize = FrameHeader.lengthFieldSize + FrameHeader.size
        if payload <= Self.copiedPayloadBytes {
            var bytes = context.channel.allocator.buffer(capacity: headSize + payload)
            bytes.writeFrame(frame)
            context.write(wrapOutboundOut(bytes), promise: promise)
            return
        }
        var head = context.channel.allocator.buffer(capacity: headSize)
        head.writeInteger(UInt32(frame.length), endianness: .big)
        head.writeFrameHeader(frame.header)
        context.write(wrapOutboundOut(head), promise: nil)
        context.write(wrapOutboundOut(frame.payload), promise: promise)
    }
}

@available(*, unavailable)
extension FrameWriter: Sendable {}
