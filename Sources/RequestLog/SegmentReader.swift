import Foundation
import Zstd

/// Reads the files `SegmentWriter` writes: one record per zstd frame, stopping at the first
/// torn or corrupt frame (nothing after it is trusted) and saying where.
enum SegmentReader {
    /// The records of a segment file, in order, and where it stopped if it is damaged.
    static func read(path: String, maxRecordSize: Int = 1 << 30) throws -> (records: [[UInt8]], damage: SegmentDamage?) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RequestLogError(.io, "cannot read \(path)")
        }
        return read(bytes: Array(data), name: path, maxRecordSize: maxRecordSize)
    }

    static func read(bytes: [UInt8], name: String, maxRecordSize: Int = 1 << 30) -> (records: [[UInt8]], damage: SegmentDamage?) {
        var records: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            // The reason the frame at `offset` is bad, or its record and size.
            let result: Result<([UInt8], Int), Damaged> = bytes.withUnsafeBytes { raw in
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                do {
                    let size = try Zstd.frameSize(rest)
                    let record = try Zstd.decompressFrame(UnsafeRawBufferPointer(rebasing: rest[..<size]), maxSize: maxRecordSize)
                    return .success((record, size))
                } catch let error as ZstdError {
                    return .failure(Damaged(reason: error.isTruncated ? "truncated" : "corrupt (\(error.message))"))
                } catch {
                    return .failure(Damaged(reason: "corrupt (\(error))"))
                }
            }
            switch result {
            case .success(let (record, size)):
                records.append(record)
                offset += size
            case .failure(let damaged):
                return (records, SegmentDamage(path: name, offset: offset, recordsBefore: records.count, reason: damaged.reason))
            }
        }
        return (records, nil)
    }

    private struct Damaged: Error {
        var reason: String
    }

    /// Cuts a damaged file back to its last whole record; returns what was cut, if anything.
    @discardableResult
    static func repair(path: String) throws -> SegmentDamage? {
        let (_, damage) = try read(path: path)
        guard let damage else { return nil }
        guard truncate(path, off_t(damage.offset)) == 0 else {
            throw RequestLogError(.io, "cannot truncate \(path): \(String(cString: strerror(errno)))")
        }
        return damage
    }
}
