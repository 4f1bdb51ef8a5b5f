import NIOCore

/// Splits the inbound byte stream into `Frame`s, enforcing a maximum frame size and a deadline
/// for each frame to arrive whole. Use it wrapped in a `ByteToMessageHandler`:
///
/// ```swift
/// let decoder = FrameDecoder(limits: limits)
/// try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
/// // … after a successful Hello:
/// decoder.handshakeCompleted()   // raise the limits, on the channel's event loop
/// ```
///
/// A declared length above `maximumFrameSize` (or below the header size), an unknown version
/// or invalid flags throw a `ProtocolError` before the payload is buffered; the server answers
/// with a connection-level error frame and closes. A frame whose bytes do not all arrive
/// within `frameDeadline` of its first byte fires a `deadlineExceeded` `ProtocolError` through
/// `errorCaught`, after which further input is dropped. A connection closed part-way through
/// a frame throws `cancelled` from `decodeLast`.
///
/// It is a class so that the server can keep a reference and change the limits after the
/// handshake; it belongs to one channel and must only be used on that channel's event loop.
public final class FrameDecoder: ByteToMessageDecoder {
    /// Decoded frames go up the pipeline.
    public typealias InboundOut = Frame

    /// The limits this decoder started with and switches to after the handshake.
    public let limits: FrameLimits
    /// Whether `handshakeCompleted()` has been called.
    public private(set) var isHandshakeComplete = false

    /// The largest length field accepted; starts at `limits.maxFrameSizeBeforeHandshake`.
    /// Settable at any time on the event loop; a frame whose length was already accepted is
    /// not re-checked.
    public var maximumFrameSize: Int {
        get { parser.maximumFrameSize }
        set { parser.maximumFrameSize = newValue }
    }

    /// How long a frame may take to arrive whole from its first byte (`nil` = no deadline);
    /// starts at `limits.frameDeadlineBeforeHandshake`. Settable on the event loop.
    public var frameDeadline: TimeAmount?

    private var parser: FrameParser
    /// When the first byte of the incomplete frame arrived; `nil` between frames.
    private var frameStart: NIODeadline?
    /// The one outstanding deadline check; it re-arms itself while frames keep completing.
    private var timer: Scheduled<Void>?
    /// What the last decode call saw, for the deadline message.
    private var lastProgress = ""
    /// Set once the deadline has fired: later bytes are dropped.
    private var hasFailed = false

    /// A decoder enforcing `limits`, starting with the before-handshake ones.
    public init(limits: FrameLimits = .standard) {
        self.limits = limits
        self.parser = FrameParser(
            maximumFrameSize: limits.maxFrameSizeBeforeHandshake, limitContext: "allowed before the handshake")
        self.frameDeadline = limits.frameDeadlineBeforeHandshake
    }

    /// Switches to the after-handshake limits (`limits.maxFrameSize`, `limits.frameDeadline`).
    /// Call it on the event loop once the peer's `Hello` was accepted.
    public func handshakeCompleted() {
        isHandshakeComplete = true
        parser.maximumFrameSize = limits.maxFrameSize
        parser.limitContext = ""
        frameDeadline = limits.frameDeadline
    }

    /// Decodes as many frames as `buffer` holds, one per call.
    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if hasFailed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        if frameStart == nil, buffer.readableBytes > 0 {
            frameStart = context.eventLoop.now
            armTimer(context: context)
        }
        guard let frame = try parser.next(from: &buffer) else {
            lastProgress = parser.progress(buffered: buffer)
            reserveRoomForThePayload(&buffer)
            return .needMoreData
        }
        frameStart = nil
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    /// A large payload's bytes collect in `buffer` read by read; left to itself it grows by
    /// doubling, copying what it holds each time (~5 MB of copies for a 100k-row BatchPredict
    /// frame). Once a sender has sent `reserveAfterBytes` of the payload it gets room for the
    /// rest at once (not before: a declared length alone does not buy memory).
    private func reserveRoomForThePayload(_ buffer: inout ByteBuffer) {
        guard case .waitingForPayload(_, let length) = parser.state, buffer.readableBytes >= Self.reserveAfterBytes
        else { return }
        let missing = length - buffer.readableBytes
        if missing > buffer.writableBytes { buffer.reserveCapacity(minimumWritableBytes: missing) }
    }

    /// Payload bytes received before the rest of a payload gets its room.
    public static let reserveAfterBytes = 256 << 10

    /// At end of input: hands on the whole frames left, then throws `cancelled` if a frame was
    /// cut short.
    public func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        if hasFailed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        if let frame = try parser.next(from: &buffer) {
            frameStart = nil
            context.fireChannelRead(wrapInboundOut(frame))
            return .continue
        }
        cancelTimer()
        if parser.isInsideFrame(buffered: buffer) {
            let progress = parser.progress(buffered: buffer)
            buffer.moveReaderIndex(to: buffer.writerIndex)
            hasFailed = true
            throw ProtocolError(
                code: .cancelled,
                message: "the connection closed after \(progress); the partial frame was dropped")
        }
        return .needMoreData
    }

    /// Cancels the deadline timer.
    public func decoderRemoved(context: ChannelHandlerContext) {
        cancelTimer()
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, let start = frameStart, let deadline = frameDeadline else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: start + deadline) { [weak self] in
            self?.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard !hasFailed, let start = frameStart, let deadline = frameDeadline else { return }
        if context.eventLoop.now < start + deadline {
            armTimer(context: context)  // a later frame started since this check was armed
            return
        }
        hasFailed = true
        let error = ProtocolError(
            code: .deadlineExceeded,
            message: "a frame did not arrive whole within \(Self.describe(deadline)) of its first byte "
                + "(received \(lastProgress)); send each frame without pausing")
        context.fireErrorCaught(error)
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    static func describe(_ amount: TimeAmount) -> String {
        let ms = amount.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms"
    }
}

@available(*, unavailable)
extension FrameDecoder: Sendable {}
