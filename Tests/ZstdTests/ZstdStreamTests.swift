import CZstd
import Testing
@testable import Zstd

@Suite struct ZstdStreamTests {
    /// Compressible but not trivial: a repeating pattern with a slowly changing byte.
    static func sample(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 % 251) &+ ($0 >> 12)) }
    }

    static func compressStreaming(_ input: [UInt8], chunk: Int, pledged: Bool) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: 3, pledgedSize: pledged ? input.count : nil)
        var out: [UInt8] = []
        var offset = 0
        try input.withUnsafeBytes { raw in
            while offset < raw.count {
                let end = min(raw.count, offset + chunk)
                try compressor.compress(UnsafeRawBufferPointer(rebasing: raw[offset..<end])) { out.append(contentsOf: $0) }
                offset = end
            }
        }
        try compressor.finish { out.append(contentsOf: $0) }
        return out
    }

    static func decompressStreaming(_ frame: [UInt8], chunk: Int) throws -> [UInt8] {
        let decompressor = try ZstdDecompressor()
        var out: [UInt8] = []
        var offset = 0
        try frame.withUnsafeBytes { raw in
            while offset < raw.count {
                let end = min(raw.count, offset + chunk)
                try decompressor.decompress(UnsafeRawBufferPointer(rebasing: raw[offset..<end])) { out.append(contentsOf: $0) }
                offset = end
            }
        }
        try decompressor.finish()
        return out
    }

    @Test(arguments: [1, 7, 4096, 1 << 20])
    func streamingRoundTripInChunks(chunk: Int) throws {
        let input = Self.sample(chunk == 1 ? 20_000 : 600_000)
        let frame = try Self.compressStreaming(input, chunk: chunk, pledged: chunk % 2 == 0)
        #expect(try Self.decompressStreaming(frame, chunk: chunk) == input)
        // Interoperates with the one-shot API both ways.
        #expect(try Zstd.decompress(frame) == input)
        #expect(try Self.decompressStreaming(try Zstd.compress(input), chunk: 1000) == input)
    }

    /// Content that ends exactly on a full output buffer: zstd reports the frame finished on a
    /// call that filled the buffer, and one more call would wrongly wait for another frame.
    @Test(arguments: [1, 2, 7])
    func contentThatFillsTheOutputBufferExactly(buffers: Int) throws {
        let input = Self.sample(buffers * ZSTD_DStreamOutSize())
        let frame = try Self.compressStreaming(input, chunk: 1 << 20, pledged: true)
        #expect(try Self.decompressStreaming(frame, chunk: 1 << 20) == input)
        #expect(try Self.decompressStreaming(frame, chunk: 1000) == input)
        #expect(try Zstd.decompress(frame) == input)
    }

    @Test func pledgedSizeIsRecordedInTheHeader() throws {
        let input = Self.sample(300_000)
        let frame = try Self.compressStreaming(input, chunk: 65536, pledged: true)
        let size = frame.withUnsafeBytes { ZstdDecompressor.contentSize(ofFrameStartingWith: UnsafeRawBufferPointer(rebasing: $0[0..<18])) }
        #expect(size == 300_000)
        let unpledged = try Self.compressStreaming(input, chunk: 65536, pledged: false)
        #expect(unpledged.withUnsafeBytes { ZstdDecompressor.contentSize(ofFrameStartingWith: $0) } == nil)
    }

    @Test func pledgedSizeMismatchFails() throws {
        let compressor = try ZstdCompressor(pledgedSize: 10)
        try [UInt8](repeating: 1, count: 5).withUnsafeBytes { try compressor.compress($0) { _ in } }
        #expect(throws: ZstdError.self) { try compressor.finish { _ in } }
    }

    @Test func truncatedStreamIsReportedByFinish() throws {
        let frame = try Self.compressStreaming(Self.sample(200_000), chunk: 65536, pledged: false)
        #expect(throws: ZstdError.self) { _ = try Self.decompressStreaming(Array(frame.dropLast(5)), chunk: 4096) }
        #expect(throws: ZstdError.self) { _ = try Self.decompressStreaming([], chunk: 4096) }
    }

    @Test func flippedChecksumIsDetected() throws {
        var frame = try Self.compressStreaming(Self.sample(50_000), chunk: 65536, pledged: true)
        frame[frame.count - 1] ^= 0x01
        #expect(throws: ZstdError.self) { _ = try Self.decompressStreaming(frame, chunk: 4096) }
    }
}
