import LoupeProtocol
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

/// Every message through encode → frame → decoder → decode.
@Suite("Message round trips")
struct MessageRoundTripTests {
    func decodeThroughChannel(_ bytes: ByteBuffer) throws -> Frame {
        let channel = EmbeddedChannel()
        let decoder = FrameDecoder()
        decoder.handshakeCompleted()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try channel.writeInbound(bytes)
        let frame = try #require(try channel.readInbound(as: Frame.self))
        #expect(try channel.finish().isClean)
        return frame
    }

    /// Equality by serialized bytes, which also holds for NaN prices.
    func sameBytes(_ a: any SwiftProtobuf.Message, _ b: any SwiftProtobuf.Message) throws -> Bool {
        let x: [UInt8] = try a.serializedBytes()
        let y: [UInt8] = try b.serializedBytes()
        return x == y && type(of: a) == type(of: b)
    }

    @Test(arguments: Method.allCases)
    func requestsRoundTrip(method: Method) throws {
        let (message, rows) = Samples.request(method)
        let frame = try decodeThroughChannel(try Samples.requestFrame(method, id: 11))
        #expect(frame.header == .request(method, requestID: 11, rowCount: rows))
        let decoded = try frame.decodeExpectedMessage()
        #expect(type(of: decoded) == method.requestType)
        #expect(try sameBytes(decoded, message))
        #expect(decoded.isEqualTo(message: message))
    }

    @Test(arguments: Method.allCases)
    func responsesRoundTrip(method: Method) throws {
        let (message, rows) = Samples.response(method)
        let frame = try decodeThroughChannel(try Samples.responseFrame(method, id: 12))
        #expect(frame.header.flags == .response)
        #expect(frame.header.rowCount == rows)
        let decoded = try frame.decodeExpectedMessage()
        #expect(type(of: decoded) == method.responseType)
        #expect(try sameBytes(decoded, message))
    }

    @Test func typedDecodeAndTheFrameEncoderAgree() throws {
        let (message, _) = Samples.request(.predict)
        let request = try #require(message as? Loupe_V1_PredictRequest)
        let frame = try Frame(header: .request(.predict, requestID: 5), message: request)
        var viaEncoder = ByteBuffer()
        try FrameEncoder().encode(data: frame, out: &viaEncoder)
        let direct = try ByteBuffer(frameWith: .request(.predict, requestID: 5), message: request)
        #expect(viaEncoder == direct)
        #expect(try decodeThroughChannel(direct).decode(Loupe_V1_PredictRequest.self) == request)
    }

    @Test func theFrameEncoderWorksInAPipeline() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        let frame = try Frame(header: .request(.getJob, requestID: 8), message: Loupe_V1_GetJobRequest.with { $0.jobID = "j" })
        try channel.writeOutbound(frame)
        let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(bytes == (try ByteBuffer(frameWith: frame.header, message: Loupe_V1_GetJobRequest.with { $0.jobID = "j" })))
        #expect(try channel.finish().isClean)
    }

    /// The model server's writer: a small frame in one buffer, a large one as its head and
    /// the payload itself (no copy), the same bytes as the encoder's either way.
    @Test func theFrameWriterPassesLargePayloadsThrough() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FrameWriter())
        let small = try Frame(header: .request(.getJob, requestID: 8), message: Loupe_V1_GetJobRequest.with { $0.jobID = "j" })
        var payload = ByteBuffer(bytes: Array(repeating: 1, count: 10))
        payload.writeBytes((0..<(FrameWriter.copiedPayloadBytes + 1)).map { UInt8(truncatingIfNeeded: $0) })
        payload.moveReaderIndex(forwardBy: 10)
        let large = Frame(header: FrameHeader.request(.batchPredict, requestID: 9, rowCount: 3).response(), payload: payload)
        for frame in [small, large] {
            try channel.writeOutbound(frame)
            var written = ByteBuffer()
            var parts: [ByteBuffer] = []
            while var part = try channel.readOutbound(as: ByteBuffer.self) {
                parts.append(part)
                written.writeBuffer(&part)
            }
            // The large payload is the frame's own buffer, passed on.
            #expect(parts.count == (frame == large ? 2 : 1))
            if frame == large {
                #expect(parts[1].withUnsafeReadableBytes { $0.baseAddress } == payload.withUnsafeReadableBytes { $0.baseAddress })
            }
            var encoded = ByteBuffer()
            try FrameEncoder().encode(data: frame, out: &encoded)
            #expect(written == encoded)
            #expect(try decodeThroughChannel(written) == frame)
        }
        #expect(try channel.finish().isClean)
    }

    @Test func errorFramesCarryTheStatusAndDecodeAsTheError() throws {
        let sent = ProtocolError(
            code: .invalidArgument,
            message: "row 17: carat must be > 0, got -1",
            retryAfterMilliseconds: 0,
            rowErrors: [.with { $0.row = 17; $0.field = "carat"; $0.reason = "carat must be > 0, got -1" }])
        let request = FrameHeader.request(.batchPredict, requestID: 31, rowCount: 20)
        let frame = try decodeThroughChannel(ByteBuffer(errorFrameFor: sent, replyingTo: request))
        #expect(frame.header == request.errorResponse())
        #expect(frame == Frame(error: sent, replyingTo: request))
        // Decoding the expected response throws the carried error instead.
        let received = #expect(throws: ProtocolError.self) { try frame.decode(Loupe_V1_BatchPredictResponse.self) }
        #expect(received?.code == .invalidArgument)
        #expect(received?.message == sent.message)
        #expect(received?.rowErrors == sent.rowErrors)
        // And the Status itself is available.
        let status = try frame.decode(Loupe_V1_Status.self)
        #expect(status.code == .invalidArgument)
        #expect(try frame.decodeExpectedMessage() is Loupe_V1_Status)
    }

    @Test func connectionErrorsUseMethodAndRequestZero() throws {
        let sent = ProtocolError(code: .resourceExhausted, message: "frame too large", retryAfterMilliseconds: 250)
        let frame = try decodeThroughChannel(ByteBuffer(errorFrameFor: sent, replyingTo: nil))
        #expect(frame.header.methodID == 0)
        #expect(frame.header.requestID == 0)
        #expect(frame.header.flags == [.response, .error])
        let received = ProtocolError(status: try frame.decode(Loupe_V1_Status.self))
        #expect(received.code == .resourceExhausted)
        #expect(received.retryAfterMilliseconds == 250)
    }

    @Test func compressedPayloadsAreRefused() throws {
        var header = FrameHeader.request(.predict, requestID: 1)
        header.flags.insert(.compressed)
        let frame = try decodeThroughChannel(ByteBuffer(frameWith: header, message: Loupe_V1_PredictRequest()))
        let error = #expect(throws: ProtocolError.self) { try frame.decode(Loupe_V1_PredictRequest.self) }
        #expect(error?.code == .unimplemented)
    }

    @Test func aBatchOfAHundredThousandRowsFitsTheDefaultLimit() throws {
        let rows = 100_000
        let request = Loupe_V1_BatchPredictRequest.with { $0.rows = Samples.columns(rows: rows) }
        let bytes = try ByteBuffer(frameWith: .request(.batchPredict, requestID: 1, rowCount: UInt32(rows)), message: request)
        #expect(bytes.readableBytes - 4 <= FrameLimits.standard.maxFrameSize)
        let frame = try decodeThroughChannel(bytes)
        let decoded = try frame.decode(Loupe_V1_BatchPredictRequest.self)
        #expect(decoded.rows.carat.count == rows && decoded.rows.z.count == rows && decoded.rows.clarity.count == rows)
        #expect(decoded == request)
    }
}
