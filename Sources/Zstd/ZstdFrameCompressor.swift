import CZstd

/// Compresses inputs one at a time into one zstd frame each (content size and content checksum
/// in every frame), reusing one context: for many small, independent records, where a context
/// per record would cost more than the record. `Zstd.compress` makes the same frames.
///
/// Not thread-safe: one compressor, one thread at a time.
public final class ZstdFrameCompressor {
    private let context: OpaquePointer

    /// A compressor at `level`.
    public init(level: Int32 = Zstd.defaultLevel) throws {
        guard let context = ZSTD_createCCtx() else { throw ZstdError(message: "cannot allocate a compression context") }
        do {
            try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level))
            try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
        } catch {
            ZSTD_freeCCtx(context)
            throw error
        }
        self.context = context
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The most bytes a frame of `size` content bytes can take (`compress(pieces:into:)`'s room).
    public static func bound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    /// Appends one frame holding `input` to `out` (nothing is appended when it throws).
    public func compress(_ input: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws {
        let start = out.count
        let bound = Self.bound(input.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        do {
            let written = try out.withUnsafeMutableBytes { dst in
                try compress(pieces: [input], into: UnsafeMutableRawBufferPointer(rebasing: dst[start...]))
            }
            out.removeSubrange((start + written)...)
        } catch {
            out.removeSubrange(start...)
            throw error
        }
    }

    /// Writes one frame holding the concatenation of `pieces` into `dst`, which must have room
    /// for `bound(total)` bytes, and returns the frame's size. The pieces are read where they
    /// are: a large record made of a small head and big payloads is compressed without being
    /// copied together first (a 7.5 MB record's copy, the page faults of its fresh array and the
    /// zero-filling of an output array cost ~3 ms of the ~14 the frame took, measured).
    public func compress(pieces: [UnsafeRawBufferPointer], into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        let total = pieces.reduce(0) { $0 + $1.count }
        precondition(dst.count >= Self.bound(total), "compress(pieces:into:) needs bound(total) bytes of room")
        let context = context
        // A previous frame that failed part-way must not leak into this one.
        try Zstd.check(ZSTD_CCtx_reset(context, ZSTD_reset_session_only))
        // The content size goes into the frame header, and zstd checks the input against it.
        try Zstd.check(ZSTD_CCtx_setPledgedSrcSize(context, UInt64(total)))
        var out = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
        let last = pieces.lastIndex { $0.count > 0 }
        for (i, piece) in pieces.enumerated() where piece.count > 0 && i != last {
            var input = ZSTD_inBuffer(src: piece.baseAddress, size: piece.count, pos: 0)
            while input.pos < input.size {
                try Zstd.check(ZSTD_compressStream2(context, &out, &input, ZSTD_e_continue))
            }
        }
        // The last piece ends the frame (an empty input makes an empty frame).
        let end = last.map { pieces[$0] }
        var input = ZSTD_inBuffer(src: end?.baseAddress, size: end?.count ?? 0, pos: 0)
        while true {
            let left = ZSTD_compressStream2(context, &out, &input, ZSTD_e_end)
            try Zstd.check(left)
            if left == 0 { break }
            // With bound(total) bytes of room zstd never runs out of output; guard anyway.
            guard out.pos < out.size else { throw ZstdError(message: "the frame did not fit its compress bound") }
        }
        return out.pos
    }
}

@available(*, unavailable)
extension ZstdFrameCompressor: Sendable {}
