import LoupeProtocol
import NIOCore
import SwiftProtobuf

/// The body of the frame-decoder fuzz target (`Fuzz/FrameDecoderFuzz`), shared with the test
/// that replays the seed corpus, so both exercise exactly the same logic. It lives beside the
/// fuzz target, not in LoupeProtocol: the protocol module ships no test machinery.
///
/// The input is a byte stream as a peer would send it. `run` parses it whole and again in
/// pseudo-random chunks (derived from the input, so a run is reproducible) and checks:
/// - both ways give the same frames and the same error;
/// - a smaller size limit gives a prefix of those frames, then `RESOURCE_EXHAUSTED`;
/// - every payload that decodes as its method's message re-encodes to a frame that parses
///   and decodes to the same bytes.
/// A broken invariant stops the process (`precondition`), which is what the fuzzer catches.
package enum FrameFuzzing {
    /// What one input did, for tests.
    package struct Outcome: Sendable, Equatable {
        /// Headers of the frames parsed, in order.
        package var headers: [FrameHeader] = []
        /// How many payloads decoded as the message their header calls for.
        package var decodedPayloads = 0
        /// The framing error that ended the stream, if any.
        package var error: StatusCode?
        /// Whether the stream ended part-way through a frame.
        package var truncated = false
    }

    /// The size limit of the fuzz runs: large enough for every corpus frame, small enough that
    /// no input makes the fuzzer allocate much.
    package static let maximumFrameSize = 64 * 1024
    /// The smaller limit of the prefix check (the default before-handshake limit).
    package static let smallFrameSize = FrameLimits.standard.maxFrameSizeBeforeHandshake

    /// Runs every check on one input.
    package static func run(_ input: UnsafeRawBufferPointer) -> Outcome {
        let stream = ByteBuffer(bytes: input)

        let whole = parse(stream, maximumFrameSize: maximumFrameSize, chunkSeed: nil)
        let chunked = parse(stream, maximumFrameSize: maximumFrameSize, chunkSeed: seed(input))
        precondition(whole == chunked, "chunked parsing differs from whole: \(whole) vs \(chunked)")

        let small = parse(stream, maximumFrameSize: smallFrameSize, chunkSeed: nil)
        precondition(small.frames.count <= whole.frames.count, "a smaller limit gave more frames")
        precondition(Array(whole.frames.prefix(small.frames.count)) == small.frames, "a smaller limit changed frames")
        if small.frames.count < whole.frames.count || small.error?.code != whole.error?.code {
            precondition(
                small.error?.code == .resourceExhausted,
                "a smaller limit failed with \(String(describing: small.error)), not RESOURCE_EXHAUSTED")
        }

        var outcome = Outcome(
            headers: whole.frames.map(\.header), error: whole.error?.code, truncated: whole.truncated)
        for frame in whole.frames {
            precondition(frame.length <= maximumFrameSize, "a frame above the limit got through: \(frame.length)")
            if let message = try? frame.decodeExpectedMessage() {
                outcome.decodedPayloads += 1
                checkRoundTrip(message, header: frame.header)
            }
        }
        return outcome
    }

    struct Parse: Equatable {
        var frames: [Frame] = []
        var error: ProtocolError?
        var truncated = false

        static func == (a: Parse, b: Parse) -> Bool {
            a.frames == b.frames && a.truncated == b.truncated && a.error?.code == b.error?.code
                && a.error?.message == b.error?.message
        }
    }

    /// Feeds `stream` to a parser whole (`chunkSeed == nil`) or in chunks of 1 to 64 bytes.
    static func parse(_ stream: ByteBuffer, maximumFrameSize: Int, chunkSeed: UInt64?) -> Parse {
        var parser = FrameParser(maximumFrameSize: maximumFrameSize)
        var result = Parse()
        var source = stream
        var received = ByteBuffer()
        var random = chunkSeed ?? 0
        do {
            while source.readableBytes > 0 {
                var size = source.readableBytes
                if chunkSeed != nil {
                    random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    size = min(size, Int(random >> 58) + 1)
                }
                var chunk = source.readSlice(length: size)!
                received.writeBuffer(&chunk)
                while let frame = try parser.next(from: &received) {
                    result.frames.append(frame)
                }
                received.discardReadBytes()
            }
            result.truncated = parser.isInsideFrame(buffered: received)
        } catch {
            result.error = error
        }
        return result
    }

    static func checkRoundTrip(_ message: any SwiftProtobuf.Message, header: FrameHeader) {
        guard let bytes: [UInt8] = try? message.serializedBytes() else {
            preconditionFailure("a decoded \(type(of: message).protoMessageName) did not serialize")
        }
        guard bytes.count + FrameHeader.size <= maximumFrameSize else { return }  // unknown fields can grow
        let reencoded: ByteBuffer
        do {
            reencoded = try ByteBuffer(frameWith: header, message: message)
        } catch {
            preconditionFailure("could not frame a decoded message: \(error)")
        }
        var parser = FrameParser(maximumFrameSize: maximumFrameSize)
        var input = reencoded
        guard let frame = try? parser.next(from: &input), input.readableBytes == 0 else {
            preconditionFailure("a re-encoded frame did not parse back: \(header)")
        }
        precondition(frame.header == header, "header changed in a round trip: \(header) → \(frame.header)")
        guard let again = try? frame.decodeExpectedMessage(), let bytesAgain: [UInt8] = try? again.serializedBytes()
        else {
            preconditionFailure("a re-encoded \(type(of: message).protoMessageName) did not decode")
        }
        precondition(bytes == bytesAgain, "a \(type(of: message).protoMessageName) changed in a round trip")
    }

    /// FNV-1a of the input, so the chunk sizes depend on the input and a run is reproducible.
    static func seed(_ input: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in input {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }
}
