import CZstd

/// One-shot zstd compression and decompression of byte arrays.
///
/// Frames are written with zstd's content checksum and content size, so a truncated or
/// corrupted frame is detected on decompression.
public enum Zstd {
    /// Default compression level: a good ratio at a speed that does not dominate a write.
    public static let defaultLevel: Int32 = 3

    /// Compresses `input` into one zstd frame carrying its content checksum.
    public static func compress(_ input: [UInt8], level: Int32 = defaultLevel) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw ZstdError(message: "cannot allocate a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
            }
        }
        try check(written)
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses every frame in `input`, refusing output larger than `maxSize` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, maxSize: Int = 1 << 32) throws -> [UInt8] {
        guard let dctx = ZSTD_createDCtx() else { throw ZstdError(message: "cannot allocate a decompression context") }
        defer { ZSTD_freeDCtx(dctx) }
        var output: [UInt8] = []
        let known = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if known != ZSTD_CONTENTSIZE_UNKNOWN && known != ZSTD_CONTENTSIZE_ERROR && known <= UInt64(maxSize) {
            output.reserveCapacity(Int(known))
        }
        let chunk = ZSTD_DStreamOutSize()
        var buffer = [UInt8](repeating: 0, count: chunk)
        var inBuf = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var lastResult = 0
        while true {
            let (result, produced) = buffer.withUnsafeMutableBytes { dst -> (Int, Int) in
                var outBuf = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                let r = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
                return (r, outBuf.pos)
            }
            try check(result)
            lastResult = result
            if produced > 0 {
                guard output.count + produced <= maxSize else {
                    throw ZstdError(message: "decompressed data exceeds the limit of \(maxSize) bytes")
                }
                output.append(contentsOf: buffer[0..<produced])
            }
            // 0 means the frame ended and is flushed: calling again without input would start
            // waiting for another frame (and report the stream as truncated).
            if inBuf.pos == inBuf.size && (result == 0 || produced < chunk) { break }
        }
        guard lastResult == 0 else {
            throw ZstdError(message: "truncated zstd frame: input ended before the frame did")
        }
        return output
    }

    /// Decompresses every frame in `input`.
    public static func decompress(_ input: [UInt8], maxSize: Int = 1 << 32) throws -> [UInt8] {
        try input.withUnsafeBytes { try decompress($0, maxSize: maxSize) }
    }

    static func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 {
            throw ZstdError(message: String(cString: ZSTD_getErrorName(code)))
        }
    }
}

/// A zstd failure: corrupt or truncated input, a checksum mismatch, or an output limit.
public struct ZstdError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, as zstd or Loupe describes it.
    public let message: String
    /// The input ended inside a frame (a torn write), rather than holding a bad one.
    public var isTruncated = false
    public var description: String { "zstd: \(message)" }
}
