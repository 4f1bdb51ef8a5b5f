import Testing
@testable import Zstd

/// The frame compressor the request log writes large records with: frames written into a
/// caller's free space read back, one after another on one context, with their content size.
@Suite struct ZstdFrameCompressorTests {
    func frame(_ compressor: ZstdFrameCompressor, _ input: [UInt8], slack: Int = 0) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: ZstdFrameCompressor.bound(input.count) + slack)
        let n = try input.withUnsafeBytes { input in
            try out.withUnsafeMutableBytes { try compressor.compress(input, into: $0) }
        }
        return Array(out[..<n])
    }

    @Test func framesWrittenIntoFreeSpaceReadBack() throws {
        let compressor = try ZstdFrameCompressor(level: 1)
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        for (input, slack) in [(big, 0), ([], 0), (Array(repeating: 9, count: 10), 100), (Array(big.prefix(70_000)), 1)] {
            let frame = try frame(compressor, input, slack: slack)
            #expect(try Zstd.decompress(frame) == input)
            // The content size is in the header (the segment reader relies on it).
            #expect(try frame.withUnsafeBytes { try Zstd.decompressFrame($0, maxSize: input.count) } == input)
        }
    }

    @Test func appendingFramesMatchesTheirContent() throws {
        let compressor = try ZstdFrameCompressor(level: 1)
        var out: [UInt8] = [1, 2, 3]
        let a = Array(repeating: UInt8(1), count: 10_000), b = Array("bee".utf8)
        try a.withUnsafeBytes { try compressor.compress($0, appendingTo: &out) }
        try b.withUnsafeBytes { try compressor.compress($0, appendingTo: &out) }
        #expect(Array(out.prefix(3)) == [1, 2, 3])
        #expect(try Zstd.decompress(Array(out.dropFirst(3))) == a + b)
    }
}
