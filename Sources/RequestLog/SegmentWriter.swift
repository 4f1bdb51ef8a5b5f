import Foundation
import NIOCore
import Zstd

/// An append-only file of zstd frames, one per record, each with zstd's content checksum: the
/// payload archive's segments and the spill files. A crash in the middle of an append leaves a
/// torn last frame: `SegmentReader` stops there and keeps every record before it, and `repair`
/// cuts the file back to its last whole record. The file is also a valid zstd stream
/// (`zstd -dc` concatenates the records).
///
/// Records up to `maxStoredRecord` bytes are written as raw frames (`ZstdRawFrame`), larger ones
/// compressed with one reusable context. Why: a Predict call's record is ~250 bytes that zstd
/// cannot shrink on its own (a frame per record shares nothing between records), yet each
/// compressed frame cost the appender ~14 µs of CPU at 2,000 calls/s (a context reset on cold
/// caches, measured with `perf`): a third of the log's CPU per call. A raw frame is a memcpy
/// and an XXH64, and sealing compresses whole segments in the store, across records, where
/// small ones do shrink.
final class SegmentWriter {
    /// Records up to this size are stored raw in their frame; larger ones are compressed.
    static let maxStoredRecord = 4096

    let path: String
    private let fd: Int32
    private let compressor: ZstdFrameCompressor
    private(set) var size: Int
    /// Frames added since the last `flush`, written by it with one `write`.
    private var buffer = ByteBufferAllocator().buffer(capacity: 0)
    /// A small record's frame, reused (no allocation per call).
    private var framed: [UInt8] = []
    /// `flush` keeps the pending buffer's memory up to this size for the next group (a
    /// 100k-row call's frame is ~2 MB; fresh memory costs page faults on every group).
    static let keptBufferBytes = 16 << 20

    init(path: String, level: Int32) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RequestLogError(.io, "cannot open \(path) for appending: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        do {
            compressor = try ZstdFrameCompressor(level: level)
        } catch {
            close(fd)
            throw RequestLogError(.io, "cannot set up zstd for \(path)", cause: error)
        }
    }

    deinit { close(fd) }

    /// Frames `record` into the pending buffer; `flush` writes the buffer.
    func add(_ record: [UInt8]) throws {
        if record.count <= Self.maxStoredRecord {
            framed.removeAll(keepingCapacity: true)
            record.withUnsafeBytes { ZstdRawFrame.append($0, to: &framed) }
            buffer.writeBytes(framed)
            return
        }
        let bound = ZstdFrameCompressor.bound(record.count)
        do {
            try record.withUnsafeBytes { record in
                // Straight into the pending buffer's free space: no zero-filled output array.
                _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { free in
                    try compressor.compress(record, into: free)
                }
            }
        } catch {
            throw RequestLogError(.io, "cannot compress a record for \(path)", cause: error)
        }
    }

    /// Writes what was added with one `write` (group commit), and fsyncs when `sync`.
    func flush(sync: Bool) throws {
        if buffer.readableBytes > 0 {
            try buffer.withUnsafeReadableBytes { raw in
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
            size += buffer.readableBytes
            if buffer.capacity <= Self.keptBufferBytes {
                buffer.clear()
            } else {
                buffer = ByteBufferAllocator().buffer(capacity: 0)
            }
        }
        if sync, fsync(fd) != 0 {
            throw RequestLogError(.io, "cannot fsync \(path): \(String(cString: strerror(errno)))")
        }
    }
}

@available(*, unavailable) extension SegmentWriter: Sendable {}
