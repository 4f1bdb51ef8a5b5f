import LoupeConnection
import LoupeProtocol
import NIOCore
import NIOEmbedded
import Testing

/// The state machine driven through a real pipeline (the frame decoder, then a minimal handler
/// with the same shape as the server's and the gateway's), fed one byte at a time.
@Suite struct ConnectionPipelineTests {
    /// Accepts any Hello at once; a call stays in flight until `finish` answers it.
    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = Frame
        typealias OutboundOut = ByteBuffer

        var connection = ConnectionStateMachine<String>(maxInFlight: 8)
        var pendingClose = PendingClose()
        var inFlight: [UInt32: FrameHeader] = [:]
        var context: ChannelHandlerContext!

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            act(connection.received(unwrapInboundIn(data)))
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, event == .inputClosed, let close = connection.inputEnded() {
                pendingClose.close(close, context: context)
            }
            if event is DrainEvent, let close = connection.drain() { pendingClose.close(close, context: context) }
        }

        private func act(_ action: ConnectionStateMachine<String>.FrameAction) {
            switch action {
            case .drop, .queued:
                break
            case .fail(let error, let header, _):
                send(ByteBuffer(errorFrameFor: error, replyingTo: header))
                pendingClose.close(.all, context: context)
            case .handshake(let frame):
                send(try! ByteBuffer(frameWith: frame.header.response(), message: Loupe_V1_Welcome()))
                let (queued, close) = connection.handshakeSucceeded("tester")
                queued.forEach(act)
                if let close { pendingClose.close(close, context: context) }
            case .health(let frame):
                send(try! ByteBuffer(frameWith: frame.header.response(), message: Loupe_V1_HealthResponse()))
            case .call(let frame, _, _):
                connection.callStarted(frame.header)
                inFlight[frame.header.requestID] = frame.header
            case .reject(let error, let frame, _):
                send(ByteBuffer(errorFrameFor: error, replyingTo: frame.header))
            case .violation(let error, let closeNow):
                send(ByteBuffer(errorFrameFor: error, replyingTo: nil))
                if closeNow { pendingClose.close(.output, context: context) }
            }
        }

        func finish(_ id: UInt32) {
            guard let header = inFlight.removeValue(forKey: id) else { return }
            var reply = ByteBuffer()
            reply.writeFrame(Frame(header: header.response(), payload: ByteBuffer()))
            send(reply)
            if case .close(let close) = connection.callFinished(header) { pendingClose.close(close, context: context) }
        }

        private func send(_ bytes: ByteBuffer) {
            pendingClose.wrote(context.writeAndFlush(wrapOutboundOut(bytes)))
        }
    }

    static func bytes(_ method: Method, id: UInt32) -> [UInt8] {
        var buffer = ByteBuffer()
        if method == .hello {
            var hello = Loupe_V1_Hello()
            hello.protocolVersion = 1
            buffer = try! ByteBuffer(frameWith: .request(.hello, requestID: id), message: hello)
        } else {
            buffer.writeFrame(Frame(header: .request(method, requestID: id), payload: ByteBuffer()))
        }
        return Array(buffer.readableBytesView)
    }

    static func pipeline() throws -> (EmbeddedChannel, EchoHandler) {
        let handler = EchoHandler()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7071)).wait()
        return (channel, handler)
    }

    /// Every frame written so far, in order.
    static func written(_ channel: EmbeddedChannel) throws -> [Frame] {
        var frames: [Frame] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes > 0 {
                guard let length = buffer.readInteger(as: UInt32.self), let header = buffer.readFrameHeader(),
                    let payload = buffer.readSlice(length: Int(length) - FrameHeader.size)
                else { break }
                frames.append(Frame(header: header, payload: payload))
            }
        }
        return frames
    }

    @Test func aHandshakeAndPipelinedCallsFedOneByteAtATime() throws {
        let (channel, handler) = try Self.pipeline()
        let input = Self.bytes(.hello, id: 1) + Self.bytes(.predict, id: 2) + Self.bytes(.predict, id: 3)
        for byte in input { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(try Self.written(channel).map(\.header.requestID) == [1])
        #expect(handler.inFlight.keys.sorted() == [2, 3])
        handler.finish(3)
        handler.finish(2)
        let replies = try Self.written(channel)
        #expect(replies.map(\.header.requestID) == [3, 2] && replies.allSatisfy { $0.header.flags == .response })
        // An id may be reused once answered.
        for byte in Self.bytes(.predict, id: 2) { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(handler.inFlight.keys.sorted() == [2])
        handler.finish(2)
        #expect(try Self.written(channel).count == 1)
        #expect(try channel.finish().isClean)
    }

    @Test func aReusedIDGetsAConnectionErrorAndTheCloseWaitsForTheCallInFlight() throws {
        let (channel, handler) = try Self.pipeline()
        try channel.writeInbound(ByteBuffer(bytes: Self.bytes(.hello, id: 1)))
        try channel.writeInbound(ByteBuffer(bytes: Self.bytes(.predict, id: 4) + Self.bytes(.predict, id: 4)))
        let frames = try Self.written(channel)
        #expect(frames.count == 2)
        #expect(frames.last?.header.methodID == Method.noneID && frames.last?.header.flags == [.response, .error])
        #expect(channel.isActive, "the call in flight is still to be answered")
        handler.finish(4)
        #expect(try Self.written(channel).map(\.header.requestID) == [4])
        #expect(!channel.isActive)
    }

    @Test func aHalfCloseAnswersTheCallsInFlightThenCloses() throws {
        let (channel, handler) = try Self.pipeline()
        for byte in Self.bytes(.hello, id: 1) + Self.bytes(.batchPredict, id: 2) {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(channel.isActive)
        handler.finish(2)
        #expect(try Self.written(channel).map(\.header.requestID) == [1, 2])
        #expect(!channel.isActive)
    }

    @Test func callsBeforeHelloAreRefusedAndHealthIsAnswered() throws {
        let (channel, _) = try Self.pipeline()
        for byte in Self.bytes(.health, id: 9) + Self.bytes(.predict, id: 10) {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        let frames = try Self.written(channel)
        #expect(frames.map(\.header.requestID) == [9, 10])
        #expect(frames[1].header.flags == [.response, .error])
        #expect(!channel.isActive)
    }
}
