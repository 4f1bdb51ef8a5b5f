import LoupeProtocol
import LoupeUtilities
import NIOCore
import NIOEmbedded
import Testing

@Suite("Frame decoder")
struct FrameDecoderTests {
    /// A channel whose pipeline holds a FrameDecoder; the decoder is returned so tests can
    /// change its limits.
    func makeChannel(limits: FrameLimits = .standard, handshakeDone: Bool = false) throws
        -> (EmbeddedChannel, FrameDecoder)
    {
        let channel = EmbeddedChannel()
        let decoder = FrameDecoder(limits: limits)
        if handshakeDone { decoder.handshakeCompleted() }
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        return (channel, decoder)
    }

    func readFrames(_ channel: EmbeddedChannel) throws -> [Frame] {
        var frames: [Frame] = []
        while let frame = try channel.readInbound(as: Frame.self) { frames.append(frame) }
        return frames
    }

    /// Decodes `stream` in one go, for comparing with chunked feeding.
    func expectedFrames(_ stream: ByteBuffer) throws -> [Frame] {
        let (channel, _) = try makeChannel(handshakeDone: true)
        try channel.writeInbound(stream)
        let frames = try readFrames(channel)
        #expect(try channel.finish().isClean)
        return frames
    }

    func header(
        version: UInt8 = 1, flags: UInt8 = 0x01, method: UInt16 = 3, requestID: UInt32 = 7
    ) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeMultipleIntegers(version, flags, method, requestID, UInt32(0), UInt32(0))
        return b
    }

    @Test func decodesOneFrame() throws {
        let (channel, _) = try makeChannel()
        let bytes = try Samples.requestFrame(.predict, id: 42)
        try channel.writeInbound(bytes)
        let frame = try #require(try channel.readInbound(as: Frame.self))
        #expect(frame.header == .request(.predict, requestID: 42))
        #expect(frame.length == bytes.readableBytes - 4)
        let request = try frame.decode(Loupe_V1_PredictRequest.self)
        #expect(request.diamond.carat == 1.01)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test func decodesFramesFedOneByteAtATime() throws {
        var stream = ByteBuffer()
        for var frame in try Samples.everyFrame() { stream.writeBuffer(&frame) }
        let expected = try expectedFrames(stream)
        #expect(expected.count == Method.allCases.count * 3)

        let (channel, _) = try makeChannel(handshakeDone: true)
        var got: [Frame] = []
        for byte in stream.readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            got += try readFrames(channel)
        }
        #expect(got == expected)
        #expect(try channel.finish().isClean)
    }

    @Test(arguments: 0..<20)
    func decodesFramesFedInRandomChunks(seed: UInt64) throws {
        var stream = ByteBuffer()
        for var frame in try Samples.everyFrame() { stream.writeBuffer(&frame) }
        let expected = try expectedFrames(stream)

        var random = SplitMix64(state: seed)
        let maxChunk = [1, 3, 17, 64, 700][Int(seed % 5)]
        let sizes = (0..<stream.readableBytes).map { _ in Int.random(in: 1...maxChunk, using: &random) }
        let (channel, _) = try makeChannel(handshakeDone: true)
        var got: [Frame] = []
        for chunk in stream.chunked(sizes) {
            try channel.writeInbound(chunk)
            got += try readFrames(channel)
        }
        #expect(got == expected)
        #expect(try channel.finish().isClean)
    }

    /// Frames past `reserveAfterBytes` (room for the rest is reserved part-way) arriving in
    /// reads of every size, with the next frame's bytes behind them, decode whole.
    @Test(arguments: [1000, 65_536, 300_001])
    func decodesLargeFramesFedInChunks(chunk: Int) throws {
        var stream = ByteBuffer()
        for (id, size) in [(1, FrameDecoder.reserveAfterBytes + 5), (2, 3 * FrameDecoder.reserveAfterBytes), (3, 10)] {
            stream.writeInteger(UInt32(16 + size))
            var head = header(requestID: UInt32(id))
            stream.writeBuffer(&head)
            stream.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ id) })
        }
        let expected = try expectedFrames(stream)
        #expect(expected.count == 3)
        let (channel, _) = try makeChannel(handshakeDone: true)
        var got: [Frame] = []
        for part in stream.chunked(Array(repeating: chunk, count: stream.readableBytes / chunk + 1)) {
            try channel.writeInbound(part)
            got += try readFrames(channel)
        }
        #expect(got == expected)
        #expect(try channel.finish().isClean)
    }

    @Test func decodesManyFramesInOneBuffer() throws {
        let (channel, _) = try makeChannel(handshakeDone: true)
        var stream = ByteBuffer()
        for id in 1...500 {
            var frame = try Samples.requestFrame(.predict, id: UInt32(id))
            stream.writeBuffer(&frame)
        }
        try channel.writeInbound(stream)
        let frames = try readFrames(channel)
        #expect(frames.map(\.header.requestID) == Array(1...500))
        #expect(try channel.finish().isClean)
    }

    @Test func acceptsAnEmptyPayload() throws {
        let (channel, _) = try makeChannel()
        let bytes = try ByteBuffer(frameWith: .request(.health, requestID: 1), message: Loupe_V1_HealthRequest())
        #expect(bytes.readableBytes == 20)
        try channel.writeInbound(bytes)
        let frame = try #require(try channel.readInbound(as: Frame.self))
        #expect(frame.payload.readableBytes == 0)
        #expect(try channel.finish().isClean)
    }

    // MARK: sizes

    @Test func rejectsAnOversizeLengthBeforeTheHandshakeFromTheLengthAlone() throws {
        let (channel, _) = try makeChannel()
        var length = ByteBuffer()
        length.writeInteger(UInt32(8 * 1024 + 1))
        // Only the 4 length bytes: the decoder must not wait for (or buffer) the payload.
        let error = #expect(throws: ProtocolError.self) { try channel.writeInbound(length) }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("8193") == true)
        #expect(error?.message.contains("maximum of 8192 bytes allowed before the handshake") == true)
        _ = try? channel.finish()
    }

    @Test func acceptsExactlyTheMaximum() throws {
        let limits = FrameLimits(maxFrameSizeBeforeHandshake: 1000)
        let (channel, _) = try makeChannel(limits: limits)
        var frame = ByteBuffer()
        frame.writeFrame(Frame(header: .request(.predict, requestID: 1), payload: ByteBuffer(repeating: 0, count: 984)))
        #expect(frame.readableBytes == 1004)
        try channel.writeInbound(frame)
        #expect(try channel.readInbound(as: Frame.self)?.length == 1000)
        #expect(try channel.finish().isClean)

        let (channel2, _) = try makeChannel(limits: limits)
        var tooBig = ByteBuffer()
        tooBig.writeFrame(Frame(header: .request(.predict, requestID: 1), payload: ByteBuffer(repeating: 0, count: 985)))
        #expect(throws: ProtocolError.self) { try channel2.writeInbound(tooBig) }
        _ = try? channel2.finish()
    }

    @Test func theHandshakeRaisesTheLimit() throws {
        var big = ByteBuffer()
        big.writeFrame(
            Frame(header: .request(.batchPredict, requestID: 2), payload: ByteBuffer(repeating: 0, count: 100_000)))

        let (before, _) = try makeChannel()
        let error = #expect(throws: ProtocolError.self) { try before.writeInbound(big) }
        #expect(error?.code == .resourceExhausted)
        _ = try? before.finish()

        let (after, decoder) = try makeChannel()
        // The handshake frame arrives under the small limit, then the server raises it.
        try after.writeInbound(try Samples.requestFrame(.hello, id: 1))
        #expect(try after.readInbound(as: Frame.self)?.header.method == .hello)
        #expect(!decoder.isHandshakeComplete)
        decoder.handshakeCompleted()
        #expect(decoder.maximumFrameSize == FrameLimits.standard.maxFrameSize)
        try after.writeInbound(big)
        #expect(try after.readInbound(as: Frame.self)?.payload.readableBytes == 100_000)

        // Above the after-handshake maximum: rejected from the length alone.
        var huge = ByteBuffer()
        huge.writeInteger(UInt32(FrameLimits.standard.maxFrameSize + 1))
        let hugeError = #expect(throws: ProtocolError.self) { try after.writeInbound(huge) }
        #expect(hugeError?.code == .resourceExhausted)
        #expect(hugeError?.message.contains("before the handshake") == false)
        _ = try? after.finish()
    }

    @Test func theMaximumIsSettableAtRuntime() throws {
        let (channel, decoder) = try makeChannel()
        decoder.maximumFrameSize = 32
        var ok = ByteBuffer()
        ok.writeFrame(Frame(header: .request(.predict, requestID: 1), payload: ByteBuffer(repeating: 1, count: 16)))
        try channel.writeInbound(ok)
        #expect(try channel.readInbound(as: Frame.self) != nil)
        decoder.maximumFrameSize = 31
        #expect(throws: ProtocolError.self) { try channel.writeInbound(ok) }
        _ = try? channel.finish()
    }

    @Test(arguments: [0, 1, 4, 15])
    func rejectsALengthSmallerThanTheHeader(length: UInt32) throws {
        let (channel, _) = try makeChannel()
        var bytes = ByteBuffer()
        bytes.writeInteger(length)
        let error = #expect(throws: ProtocolError.self) { try channel.writeInbound(bytes) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("smaller than the 16-byte header") == true)
        _ = try? channel.finish()
    }

    // MARK: header checks

    @Test func rejectsAnUnknownVersionFromItsFirstByte() throws {
        let (channel, _) = try makeChannel()
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(16))
        bytes.writeInteger(UInt8(2))  // the version byte alone
        let error = #expect(throws: ProtocolError.self) { try channel.writeInbound(bytes) }
        #expect(error?.code == .unimplemented)
        #expect(error?.message.contains("protocol version 2 is not supported") == true)
        _ = try? channel.finish()
    }

    @Test(arguments: [
        (UInt8(0x00), "exactly one of request"),
        (0x03, "exactly one of request"),
        (0x05, "error (0x04) on a request"),
        (0x04, "exactly one of request"),
        (0x11, "reserved bits 0x10"),
        (0x82, "reserved bits 0x80"),
    ])
    func rejectsInvalidFlags(flags: UInt8, reason: String) throws {
        let (channel, _) = try makeChannel()
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(16))
        var h = header(flags: flags)
        bytes.writeBuffer(&h)
        let error = #expect(throws: ProtocolError.self) { try channel.writeInbound(bytes) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        _ = try? channel.finish()
    }

    @Test func passesUnknownMethodsThrough() throws {
        let (channel, _) = try makeChannel()
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(18))
        var h = header(method: 999)
        bytes.writeBuffer(&h)
        bytes.writeBytes([0x08, 0x01])
        try channel.writeInbound(bytes)
        let frame = try #require(try channel.readInbound(as: Frame.self))
        #expect(frame.header.methodID == 999)
        #expect(frame.header.method == nil)
        let error = #expect(throws: ProtocolError.self) { try frame.decodeExpectedMessage() }
        #expect(error?.code == .unimplemented)
        #expect(try channel.finish().isClean)
    }

    // MARK: garbage

    @Test func rejectsAnHTTPRequestAsAnOversizeFrame() throws {
        let (channel, _) = try makeChannel()
        let error = #expect(throws: ProtocolError.self) {
            try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: loupe\r\n\r\n"))
        }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("1195725856") == true)  // "GET " read as a length
        _ = try? channel.finish()
    }

    @Test(arguments: 0..<50)
    func survivesRandomGarbage(seed: UInt64) throws {
        var random = SplitMix64(state: seed &* 7919)
        let count = Int.random(in: 1...300, using: &random)
        var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
        if seed % 2 == 0, bytes.count >= 5 {
            // Half the inputs get a plausible length and version, so the header checks run.
            bytes.replaceSubrange(0..<5, with: [0, 0, 0, UInt8(min(count - 4, 255)), 1])
        }
        let (channel, _) = try makeChannel()
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            _ = try readFrames(channel)
            _ = try channel.finish()
        } catch let error as ProtocolError {
            #expect(!error.message.isEmpty)
        }
    }

    @Test func garbagePayloadsAreFramedButDoNotDecode() throws {
        let (channel, _) = try makeChannel()
        var bytes = ByteBuffer()
        // Field 1 as a length-delimited value claiming 100 bytes, with 2 present.
        bytes.writeFrame(Frame(header: .request(.predict, requestID: 9), payload: ByteBuffer(bytes: [0x0a, 0x64, 1, 2])))
        try channel.writeInbound(bytes)
        let frame = try #require(try channel.readInbound(as: Frame.self))
        let error = #expect(throws: ProtocolError.self) { try frame.decode(Loupe_V1_PredictRequest.self) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("is not a valid loupe.v1.PredictRequest") == true)
        #expect(try channel.finish().isClean)
    }

    // MARK: end of stream

    @Test(arguments: [2, 4, 10, 25])
    func reportsATruncatedFrameAtClose(keep: Int) throws {
        let (channel, _) = try makeChannel()
        let whole = try Samples.requestFrame(.predict, id: 3)
        try channel.writeInbound(whole.getSlice(at: 0, length: keep)!)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        let error = #expect(throws: ProtocolError.self) { try channel.finish() }
        #expect(error?.code == .cancelled)
        #expect(error?.message.contains("the connection closed after") == true)
        if keep >= 4 {
            #expect(error?.message.contains("\(keep) bytes of a \(whole.readableBytes)-byte frame") == true)
        }
    }

    @Test func deliversWholeFramesBeforeReportingTheTruncatedOne() throws {
        let (channel, _) = try makeChannel()
        var stream = try Samples.requestFrame(.health, id: 1)
        var second = try Samples.requestFrame(.predict, id: 2)
        stream.writeBuffer(&second)
        try channel.writeInbound(stream.getSlice(at: 0, length: stream.readableBytes - 1)!)
        #expect(try channel.readInbound(as: Frame.self)?.header.requestID == 1)
        #expect(throws: ProtocolError.self) { try channel.finish() }
    }

    @Test func closingBetweenFramesIsClean() throws {
        let (channel, _) = try makeChannel()
        try channel.writeInbound(try Samples.requestFrame(.health, id: 1))
        #expect(try channel.readInbound(as: Frame.self) != nil)
        #expect(try channel.finish().isClean)
    }
}
