import CZstd
import Foundation

/// An append-only file of zstd frames, one per record (each with zstd's content checksum;
/// records up to 4 KiB are stored uncompressed in their frame, see `StoredFrame`).
/// A crash in the middle of an append leaves a torn last frame: readers stop there and keep
/// every record before it, and `repair` cuts the file back to its last whole record. The file
/// is also a valid zstd stream (`zstd -dc` concatenates the records).
final class SegmentWriter {
    let path: String
    private let fd: Int32
    private let compressor: FrameCompressor
    private(set) var size: Int
    private var buffer: [UInt8] = []

    init(path: String, level: Int32) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RequestLogError(.io, "cannot open \(path) for appending: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        compressor = try FrameCompressor(level: level)
    }

    deinit { close(fd) }

    /// Compresses `record` as one frame into the pending buffer; `flush` writes the buffer.
    func add(_ record: [UInt8]) throws {
        try compressor.compress(record, appendingTo: &buffer)
    }

    /// Writes what was added with one `write` (group commit), and fsyncs when `sync`.
    func flush(sync: Bool) throws {
        if !buffer.isEmpty {
            try buffer.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw RequestLogError(.io, "cannot append to \(path): \(String(cString: strerror(errno)))")
                    }
                    done += n
                }
            }
            size += buffer.count
            buffer.removeAll(keepingCapacity: buffer.count < 1 << 22)
        }
        if sync, fsync(fd) != 0 {
            throw RequestLogError(.io, "cannot fsync \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// One record, one zstd frame: small records stored (`StoredFrame`), larger ones compressed
/// with one reusable context (creating one per record would cost more than the record).
final class FrameCompressor {
    private let context: OpaquePointer

    init(level: Int32) throws {
        guard let context = ZSTD_createCCtx() else { throw RequestLogError(.io, "zstd: cannot allocate a context") }
        self.context = context
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    func compress(_ input: [UInt8], appendingTo out: inout [UInt8]) throws {
        if input.count <= StoredFrame.maxContent {
            input.withUnsafeBytes { StoredFrame.append($0, to: &out) }
            return
        }
        let start = out.count
        let bound = ZSTD_compressBound(input.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        let written = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_compress2(context, dst.baseAddress! + start, bound, src.baseAddress, src.count)
            }
        }
        guard ZSTD_isError(written) == 0 else {
            out.removeSubrange(start...)
            throw RequestLogError(.io, "zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        out.removeSubrange((start + written)...)
    }
}

/// Where a segment stopped being readable.
public struct SegmentDamage: Sendable, Hashable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Byte offset of the first bad frame (everything before it was read).
    public var offset: Int
    /// Records read before it.
    public var recordsBefore: Int
    public var reason: String

    public var description: String {
        "\(path): record \(recordsBefore + 1) at byte \(offset) is \(reason); the \(recordsBefore) records before it were read"
    }
}

enum SegmentReader {
    /// The records of a segment file, in order, and where it stopped if it is damaged (a torn
    /// or corrupt frame: nothing after it is trusted).
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
            let result: Result<([UInt8], Int), RequestLogError> = bytes.withUnsafeBytes { raw in
                let base = raw.baseAddress! + offset
                let remaining = raw.count - offset
                let size = ZSTD_findFrameCompressedSize(base, remaining)
                if ZSTD_isError(size) != 0 {
                    let name = String(cString: ZSTD_getErrorName(size))
                    return .failure(RequestLogError(.corrupt, name.contains("Src size") ? "truncated" : "corrupt (\(name))"))
                }
                do {
                    let record = try decompressOne(UnsafeRawBufferPointer(start: base, count: size), maxSize: maxRecordSize)
                    return .success((record, size))
                } catch {
                    return .failure(RequestLogError(.corrupt, "corrupt (\(error))"))
                }
            }
            switch result {
            case .success(let (record, size)):
                records.append(record)
                offset += size
            case .failure(let error):
                return (records, SegmentDamage(path: name, offset: offset, recordsBefore: records.count, reason: error.message))
            }
        }
        return (records, nil)
    }

    private static func decompressOne(_ frame: UnsafeRawBufferPointer, maxSize: Int) throws -> [UInt8] {
        let known = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard known != ZSTD_CONTENTSIZE_ERROR, known != ZSTD_CONTENTSIZE_UNKNOWN, known <= UInt64(maxSize) else {
            throw RequestLogError(.corrupt, "frame without a valid content size")
        }
        var out = [UInt8](repeating: 0, count: Int(known))
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_decompress(dst.baseAddress, dst.count, frame.baseAddress, frame.count)
        }
        guard ZSTD_isError(n) == 0, n == Int(known) else {
            throw RequestLogError(.corrupt, ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "short frame")
        }
        return out
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
