import Foundation
import LoupeProtocol
import NIOCore
@testable import RequestLog
import Testing
import Zstd

extension RequestLogSuites {
    /// Segment files: one zstd frame per record, so a torn or damaged tail costs at most the
    /// records from the damage on, and says where.
    @Suite struct SegmentTests {
        func records(_ n: Int) -> [ArchivedCall] {
            (0..<n).map { i in
                // Record 3 is past SegmentWriter.maxStoredRecord: compressed, the others stored raw.
                ArchivedCall(row: row(i), request: Array(repeating: UInt8(i % 251), count: i == 3 ? 20_000 : 100 + i * 7),
                              response: Array("response \(i)".utf8), responseIsError: i % 5 == 0)
            }
        }

        /// A record as the appender encodes a call's (which comes from frames, not arrays).
        func encoded(_ record: ArchivedCall) -> [UInt8] {
            var out: [UInt8] = []
            record.request.withUnsafeBytes { request in
                record.response.withUnsafeBytes { response in
                    RecordCodec.encodeRecord(row: record.row, responseIsError: record.responseIsError, request: request,
                                             response: response, into: &out)
                }
            }
            return out
        }

        func write(_ records: [ArchivedCall], to path: String) throws -> [Int] {
            let writer = try SegmentWriter(path: path, level: 1)
            var ends: [Int] = []
            for record in records {
                try writer.add(encoded(record))
                try writer.flush(sync: false)
                ends.append(writer.size)
            }
            return ends
        }

        @Test func recordsRoundTrip() throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = scratch.path + "/a.seg"
            let written = records(20)
            _ = try write(written, to: path)
            var read: [ArchivedCall] = []
            try PayloadArchiveReader.readSegment(path: path) { read.append($0) }
            #expect(read == written)
        }

        @Test func aTornTailLosesOnlyTheLastRecord() throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = scratch.path + "/torn.seg"
            let written = records(6)
            let ends = try write(written, to: path)
            let whole = try Data(contentsOf: URL(fileURLWithPath: path))
            // Cut the file at every byte inside the last record.
            for cut in ends[4]..<ends[5] {
                try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
                let (frames, damage) = try SegmentReader.read(path: path)
                #expect(frames.count == 5)
                if cut > ends[4] {
                    let damage = try #require(damage)
                    #expect(damage.offset == ends[4] && damage.recordsBefore == 5 && damage.reason.contains("truncated"))
                } else {
                    #expect(damage == nil)
                }
            }
            // repair cuts the file back to the whole records; appending then works.
            try whole.prefix(ends[5] - 3).write(to: URL(fileURLWithPath: path))
            #expect(try SegmentReader.repair(path: path) != nil)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == ends[4])
            _ = try write(Array(written[5...]), to: path)
            var read: [ArchivedCall] = []
            try PayloadArchiveReader.readSegment(path: path) { read.append($0) }
            #expect(read == written)
        }

        @Test func aCorruptRecordIsReportedWithItsPlace() throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = scratch.path + "/bad.seg"
            let ends = try write(records(4), to: path)
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[ends[1] + (ends[2] - ends[1]) / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            var read = 0
            #expect { try PayloadArchiveReader.readSegment(path: path) { _ in read += 1 } } throws: { error in
                let text = "\(error)"
                return text.contains("record 3 at byte \(ends[1])") && text.contains("the 2 records before it were read")
            }
            #expect(read == 2)
        }
    
        /// A call's record built from its frames' buffers (a payload in a frame slice) into a
        /// reused array, then framed, raw or compressed straight into the pending buffer, reads
        /// back as the record `encodeRecord` makes; and a frame appended the way earlier writers
        /// made them (zstd's one-shot API on a whole record) still reads.
        @Test func recordsFromFrameSlicesReadAsWholeRecords() throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = scratch.path + "/pieces.seg"
            let small = try predictCall(1)
            var big = try predictCall(2)
            // A 100k-row-like payload in a frame slice, as the server hands it over (readerIndex > 0).
            var payload = ByteBuffer(bytes: Array(repeating: 0xAB, count: 64))
            payload.writeBytes((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 8) })
            payload.moveReaderIndex(forwardBy: 64)
            big.request = Frame(header: big.request!.header, payload: payload)
            var headOnly = try predictCall(3)
            headOnly.request = nil
            let calls = [small, big, headOnly]
            let rows = calls.enumerated().map { GuestbookRow(id: "r-\($0.offset)", call: $0.element) }
            let writer = try SegmentWriter(path: path, level: 1)
            var record: [UInt8] = []
            for (call, row) in zip(calls, rows) {
                record.removeAll(keepingCapacity: true)
                RecordCodec.encode(call, row: row, into: &record)
                try writer.add(record)
            }
            try writer.flush(sync: false)
            // The old writer's frame behind them: the whole record, compressed in one shot.
            let whole = wholeRecord(big, row: rows[1])
            let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try file.seekToEnd()
            try file.write(contentsOf: Data(try Zstd.compress(whole, level: 1)))
            try file.close()
            let (records, damage) = try SegmentReader.read(path: path)
            #expect(damage == nil)
            #expect(records == zip(calls, rows).map { wholeRecord($0, row: $1) } + [whole])
            let decoded = try RecordCodec.decodeRecord(records[1])
            #expect(decoded.row == rows[1] && decoded.request == Array(payload.readableBytesView))
            #expect(try RecordCodec.decodeRecord(records[2]).request.isEmpty)
        }

        func wholeRecord(_ call: CallRecord, row: GuestbookRow) -> [UInt8] {
            var out: [UInt8] = []
            (call.request?.payload ?? ByteBuffer()).withUnsafeReadableBytes { request in
                call.response.payload.withUnsafeReadableBytes { response in
                    RecordCodec.encodeRecord(row: row, responseIsError: call.response.header.flags.contains(.error),
                                             request: request, response: response, into: &out)
                }
            }
            return out
        }

        /// Every length class of XXH64 (under 4, 8 and 32 bytes, whole stripes, the 1- and
        /// 2-byte size fields): libzstd (under the segment reader) reads the frame back, so header and checksum are right.
        @Test func rawFramesAreValidZstdFrames() throws {
            var random = SystemRandomNumberGenerator()
            for n in [0, 1, 3, 4, 7, 8, 9, 31, 32, 33, 63, 64, 100, 255, 256, 257, 1000, SegmentWriter.maxStoredRecord, ZstdRawFrame.maxContent] {
                let content = (0..<n).map { _ in UInt8.random(in: 0...255, using: &random) }
                var frame: [UInt8] = []
                content.withUnsafeBytes { ZstdRawFrame.append($0, to: &frame) }
                #expect(frame.count == n + 4 + 1 + (n < 256 ? 1 : 2) + 3 + 4)
                let read = SegmentReader.read(bytes: frame, name: "frame")
                #expect(read.records == [content] && read.damage == nil, "length \(n)")
                guard n > 0 else { continue }
                var damaged = frame
                damaged[frame.count - 5] ^= 0x01  // the content's last byte: the checksum no longer matches
                let reread = SegmentReader.read(bytes: damaged, name: "frame")
                #expect(reread.records.isEmpty && reread.damage?.reason.contains("corrupt") == true, "length \(n)")
            }
        }
    }
}
