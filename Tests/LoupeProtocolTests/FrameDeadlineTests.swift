import LoupeProtocol
import NIOCore
import NIOEmbedded
import Testing

/// The decoder's per-frame arrival deadline, on an EmbeddedEventLoop's virtual clock.
@Suite("Frame deadline")
struct FrameDeadlineTests {
    let limits = FrameLimits(frameDeadlineBeforeHandshake: .seconds(5), frameDeadline: .seconds(30))

    func makeChannel(handshakeDone: Bool = false) throws -> (EmbeddedChannel, EmbeddedEventLoop, FrameDecoder) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let decoder = FrameDecoder(limits: limits)
        if handshakeDone { decoder.handshakeCompleted() }
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        return (channel, loop, decoder)
    }

    @Test func cutsOffATrickler() throws {
        let (channel, loop, _) = try makeChannel()
        let frame = try Samples.requestFrame(.hello, id: 1)
        // One byte a second: 5 bytes are in when the 5 s deadline passes.
        for chunk in frame.chunked(repeatElement(1, count: 5)).prefix(5) {
            try channel.writeInbound(chunk)
            try channel.throwIfErrorCaught()
            loop.advanceTime(by: .milliseconds(999))
        }
        loop.advanceTime(by: .milliseconds(5))
        let error = #expect(throws: ProtocolError.self) { try channel.throwIfErrorCaught() }
        #expect(error?.code == .deadlineExceeded)
        #expect(error?.message.contains("within 5 s of its first byte") == true)
        #expect(error?.message.contains("received 5 bytes of a \(frame.readableBytes)-byte frame") == true)

        // The rest of the frame arrives late: dropped, nothing decoded, no second error.
        try channel.writeInbound(frame.getSlice(at: 5, length: frame.readableBytes - 5)!)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        try channel.throwIfErrorCaught()
        _ = try? channel.finish()
    }

    @Test func doesNotFireForAFrameThatCompletesInTime() throws {
        let (channel, loop, _) = try makeChannel()
        let frame = try Samples.requestFrame(.hello, id: 1)
        try channel.writeInbound(frame.getSlice(at: 0, length: 10)!)
        loop.advanceTime(by: .milliseconds(4_999))
        try channel.writeInbound(frame.getSlice(at: 10, length: frame.readableBytes - 10)!)
        #expect(try channel.readInbound(as: Frame.self) != nil)
        loop.advanceTime(by: .seconds(3600))
        try channel.throwIfErrorCaught()
        #expect(try channel.finish().isClean)
    }

    @Test func theClockRestartsForEachFrame() throws {
        let (channel, loop, _) = try makeChannel()
        // 10 frames, each taking 4 s (under the 5 s deadline), 40 s in all.
        for id in 1...10 {
            let frame = try Samples.requestFrame(.health, id: UInt32(id))
            try channel.writeInbound(frame.getSlice(at: 0, length: 3)!)
            loop.advanceTime(by: .seconds(4))
            try channel.writeInbound(frame.getSlice(at: 3, length: frame.readableBytes - 3)!)
            #expect(try channel.readInbound(as: Frame.self)?.header.requestID == UInt32(id))
            try channel.throwIfErrorCaught()
        }
        #expect(try channel.finish().isClean)
    }

    @Test func theNextFramesClockStartsWhenItsFirstBytesArrive() throws {
        let (channel, loop, _) = try makeChannel()
        var stream = try Samples.requestFrame(.health, id: 1)
        let second = try Samples.requestFrame(.health, id: 2)
        stream.writeImmutableBuffer(second.getSlice(at: 0, length: 2)!)
        loop.advanceTime(by: .seconds(3))
        try channel.writeInbound(stream)  // frame 1 whole, frame 2 starts now
        #expect(try channel.readInbound(as: Frame.self)?.header.requestID == 1)
        loop.advanceTime(by: .seconds(4))
        try channel.throwIfErrorCaught()  // 4 s into frame 2: fine
        loop.advanceTime(by: .seconds(1))
        let error = #expect(throws: ProtocolError.self) { try channel.throwIfErrorCaught() }
        #expect(error?.code == .deadlineExceeded)
        _ = try? channel.finish()
    }

    @Test func anIdleConnectionIsNotTheDecodersBusiness() throws {
        let (channel, loop, _) = try makeChannel()
        loop.advanceTime(by: .hours(2))
        try channel.throwIfErrorCaught()
        try channel.writeInbound(try Samples.requestFrame(.health, id: 1))
        loop.advanceTime(by: .hours(2))
        try channel.throwIfErrorCaught()
        #expect(try channel.readInbound(as: Frame.self) != nil)
        #expect(try channel.finish().isClean)
    }

    @Test func afterTheHandshakeTheLongerDeadlineApplies() throws {
        let (channel, loop, decoder) = try makeChannel()
        decoder.handshakeCompleted()
        let frame = try Samples.requestFrame(.predict, id: 2)
        try channel.writeInbound(frame.getSlice(at: 0, length: 1)!)
        loop.advanceTime(by: .seconds(29))
        try channel.throwIfErrorCaught()
        loop.advanceTime(by: .seconds(1))
        let error = #expect(throws: ProtocolError.self) { try channel.throwIfErrorCaught() }
        #expect(error?.message.contains("within 30 s") == true)
        _ = try? channel.finish()
    }

    @Test func noDeadlineWhenDisabled() throws {
        let (channel, loop, decoder) = try makeChannel()
        decoder.frameDeadline = nil
        let frame = try Samples.requestFrame(.predict, id: 2)
        try channel.writeInbound(frame.getSlice(at: 0, length: 1)!)
        loop.advanceTime(by: .hours(1))
        try channel.throwIfErrorCaught()
        #expect(throws: ProtocolError.self) { try channel.finish() }  // still truncated at close
    }

    @Test func closingCancelsTheTimer() throws {
        let (channel, loop, _) = try makeChannel()
        let frame = try Samples.requestFrame(.predict, id: 2)
        try channel.writeInbound(frame.getSlice(at: 0, length: 8)!)
        #expect(throws: ProtocolError.self) { try channel.finish() }
        loop.advanceTime(by: .seconds(60))
        try channel.throwIfErrorCaught()
    }
}
