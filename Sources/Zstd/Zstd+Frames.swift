import CZstd

/// Reading a stream of frames one at a time (a file of records, one frame each), so that a
/// damaged frame can be told apart from the whole frames before it.
extension Zstd {
    /// The size of the whole frame at the start of `input`. Throws a `ZstdError` (with
    /// `isTruncated` when `input` ends inside the frame) when there is no whole frame there.
    public static func frameSize(_ input: UnsafeRawBufferPointer) throws -> Int {
        let size = ZSTD_findFrameCompressedSize(input.baseAddress, input.count)
        if ZSTD_isError(size) != 0 {
            throw ZstdError(message: String(cString: ZSTD_getErrorName(size)),
                            isTruncated: ZSTD_getErrorCode(size) == ZSTD_error_srcSize_wrong)
        }
        return size
    }

    /// Decompresses the one frame `frame`, which must record its content size (at most
    /// `maxSize` bytes); checks its content checksum.
    public static func decompressFrame(_ frame: UnsafeRawBufferPointer, maxSize: Int) throws -> [UInt8] {
        let known = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard known != ZSTD_CONTENTSIZE_ERROR, known != ZSTD_CONTENTSIZE_UNKNOWN, known <= UInt64(maxSize) else {
            throw ZstdError(message: "frame without a valid content size")
        }
        var out = [UInt8](repeating: 0, count: Int(known))
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_decompress(dst.baseAddress, dst.count, frame.baseAddress, frame.count)
        }
        try check(n)
        guard n == Int(known) else { throw ZstdError(message: "short frame") }
        return out
    }
}
