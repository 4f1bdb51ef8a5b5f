import Testing
@testable import Zstd

/// The frame compressor the request log writes large records with: pieces compressed where
/// they lie make the same content as the joined bytes, frame after frame on one context.
@Suite struct ZstdFrameCompressorTests {
    func piecesFrame(_ compressor: ZstdFrameCompressor, _ pieces: [[UInt8]]) throws -> [UInt8] {
        let total = pieces.reduce(0) { $0 + $1.count }
        var out = [UInt8](repeating: 0, count: ZstdFrameCompressor.bound(total))
        // Pointers to every piece at once, as the log hands them over.
        func withPointers<R>(_ i: Int, _ held: [UnsafeRawBufferPointer], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
            guard i < pieces.count else { return try body(held) }
            return try pieces[i].withUnsafeBytes { try withPointers(i + 1, held + [$0], body) }
        }
        let n = try withPointers(0, []) { pointers in
            try out.withUnsafeMutableBytes { try compressor.compress(pieces: pointers, into: $0) }
        }
        return Array(out[..<n])
    }

    @Test func piecesCompressToTheirConcatenation() throws {
        let compressor = try ZstdFrameCompressor(level: 1)
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let cases: [[[UInt8]]] = [
            [Array("head".utf8), big, [1, 2, 3, 4], Array(big.prefix(70_000))],
            [[], big, []],  // empty pieces first and last: the frame still ends
            [big],
            [[], []],  // an empty record
            [Array(repeating: 9, count: 10)],
        ]
        for pieces in cases {
            let frame = try piecesFrame(compressor, pieces)
            let joined = pieces.flatMap { $0 }
            #expect(try Zstd.decompress(frame) == joined)
            // The content size is in the header (the segment reader relies on it).
            #expect(try Zstd.decompressFrame(frame.withUnsafeBytes { $0 }, maxSize: joined.count) == joined)
        }
    }

    @Test func appendingFramesMatchesOneShotContent() throws {
        let compressor = try ZstdFrameCompressor(level: 1)
        var out: [UInt8] = [1, 2, 3]
        let a = Array(repeating: UInt8(1), count: 10_000), b = Array("bee".utf8)
        try a.withUnsafeBytes { try compressor.compress($0, appendingTo: &out) }
        try b.withUnsafeBytes { try compressor.compress($0, appendingTo: &out) }
        #expect(Array(out.prefix(3)) == [1, 2, 3])
        #expect(try Zstd.decompress(Array(out.dropFirst(3))) == a + b)
    }
}
