import BundledData
import Testing
@testable import Zstd

@Suite struct ZstdTests {
    @Test func roundTripsBytes() throws {
        let input = Array("the quick brown fox jumps over the lazy dog, again and again and again".utf8)
        let frame = try Zstd.compress(input, level: 5)
        #expect(try Zstd.decompress(frame) == input)
    }

    @Test func roundTripsEmptyInput() throws {
        #expect(try Zstd.decompress(try Zstd.compress([])) == [])
    }

    @Test func rejectsTruncatedFrame() throws {
        let frame = try Zstd.compress(Array(repeating: 7, count: 10_000))
        #expect(throws: ZstdError.self) { try Zstd.decompress(Array(frame.dropLast(3))) }
    }

    @Test func rejectsCorruptedFrame() throws {
        var frame = try Zstd.compress((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        frame[frame.count - 2] ^= 0xFF  // inside the content checksum
        #expect(throws: ZstdError.self) { try Zstd.decompress(frame) }
    }

    @Test func enforcesOutputLimit() throws {
        let frame = try Zstd.compress(Array(repeating: 1, count: 100_000))
        #expect(throws: ZstdError.self) { try Zstd.decompress(frame, maxSize: 1000) }
    }

    @Test func bundledDataIsTheDiamondsFile() throws {
        let csv = BundledData.diamondsCSV()
        #expect(csv.count == 2_772_143)
        let lines = csv.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        #expect(lines == BundledData.diamondsRowCount + 1)
        #expect(csv.starts(with: Array("\"carat\",\"cut\"".utf8)))
    }
}
