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

    /// Appends one frame holding `input` to `out` (nothing is appended when it throws).
    public func compress(_ input: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws {
        let start = out.count
        let bound = ZSTD_compressBound(input.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        let context = context
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(context, dst.baseAddress! + start, bound, input.baseAddress, input.count)
        }
        do {
            try Zstd.check(written)
        } catch {
            out.removeSubrange(start...)
            throw error
        }
        out.removeSubrange((start + written)...)
    }
}

@available(*, unavailable)
extension ZstdFrameCompressor: Sendable {}
