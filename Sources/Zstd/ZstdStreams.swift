import CZstd

/// Streaming zstd compression: feed input in chunks, receive compressed output in chunks.
///
/// Output is one zstd frame with the content checksum; when `pledgedSize` is given the frame
/// header also records the content size (and compression fails if the input differs from it).
/// Memory use is bounded by the compression window and one output buffer, whatever the input size.
///
/// Not thread-safe: one compressor, one thread at a time.
public final class ZstdCompressor {
    private let cctx: OpaquePointer
    private var buffer: [UInt8]
    private var finished = false

    /// Creates a compressor for one frame at `level`, optionally pledging the total input size.
    public init(level: Int32 = Zstd.defaultLevel, pledgedSize: Int? = nil) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw ZstdError(message: "cannot allocate a compression context")
        }
        self.cctx = cctx
        self.buffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try ZstdCompressor.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        try ZstdCompressor.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        if let pledgedSize {
            try ZstdCompressor.check(ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(pledgedSize)))
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// Compresses `input`, handing every produced chunk of the frame to `sink` (possibly none).
    public func compress(
        _ input: UnsafeRawBufferPointer,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard !finished else { throw ZstdError(message: "compressor used after finish()") }
        guard input.count > 0 else { return }
        var inBuf = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while inBuf.pos < inBuf.size {
            _ = try step(&inBuf, ZSTD_e_continue, sink)
        }
    }

    /// Ends the frame (epilogue and checksum), handing the remaining output to `sink`.
    public func finish(into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { throw ZstdError(message: "compressor finished twice") }
        var inBuf = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&inBuf, ZSTD_e_end, sink) != 0 {}
        finished = true
    }

    /// Runs one `ZSTD_compressStream2` call; returns zstd's "bytes left to flush" hint.
    private func step(
        _ inBuf: inout ZSTD_inBuffer,
        _ mode: ZSTD_EndDirective,
        _ sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int {
        let cctx = self.cctx
        return try buffer.withUnsafeMutableBytes { out in
            var outBuf = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
            let remaining = ZSTD_compressStream2(cctx, &outBuf, &inBuf, mode)
            try ZstdCompressor.check(remaining)
            if outBuf.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<outBuf.pos])) }
            return remaining
        }
    }

    fileprivate static func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 {
            throw ZstdError(message: String(cString: ZSTD_getErrorName(code)))
        }
    }
}

@available(*, unavailable)
extension ZstdCompressor: Sendable {}

/// Streaming zstd decompression: feed compressed input in chunks, receive the content in chunks.
///
/// Checksums are verified by zstd as each frame ends; ``finish()`` reports input that ended
/// before its frame did. Several concatenated frames decode as one stream.
///
/// Not thread-safe: one decompressor, one thread at a time.
public final class ZstdDecompressor {
    private let dctx: OpaquePointer
    private var buffer: [UInt8]
    private var frameComplete = true
    private var sawInput = false

    /// Creates a decompressor.
    public init() throws {
        guard let dctx = ZSTD_createDCtx() else {
            throw ZstdError(message: "cannot allocate a decompression context")
        }
        self.dctx = dctx
        self.buffer = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Decompresses `input`, handing every produced chunk of content to `sink`.
    ///
    /// Throws ``ZstdError`` on corrupt data or a checksum mismatch.
    public func decompress(
        _ input: UnsafeRawBufferPointer,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard input.count > 0 else { return }
        sawInput = true
        let dctx = self.dctx
        var inBuf = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while true {
            let (result, produced, capacity) = try buffer.withUnsafeMutableBytes { out -> (Int, Int, Int) in
                var outBuf = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
                try ZstdCompressor.check(r)
                if outBuf.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<outBuf.pos])) }
                return (r, outBuf.pos, out.count)
            }
            // 0: a frame ended and is fully flushed. Calling again without input would make zstd
            // expect the next frame, so only continue if input remains.
            frameComplete = result == 0
            if inBuf.pos == inBuf.size && (frameComplete || produced < capacity) { break }
        }
    }

    /// Checks that the input ended on a frame boundary (and was not empty).
    public func finish() throws {
        guard sawInput else { throw ZstdError(message: "empty input: no zstd frame") }
        guard frameComplete else {
            throw ZstdError(message: "truncated zstd frame: input ended before the frame did")
        }
    }

    /// The content size recorded in the frame header at the start of `prefix`, if the header says.
    ///
    /// `prefix` should hold at least the first 18 bytes of the frame.
    public static func contentSize(ofFrameStartingWith prefix: UnsafeRawBufferPointer) -> UInt64? {
        let size = ZSTD_getFrameContentSize(prefix.baseAddress, prefix.count)
        if size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR { return nil }
        return size
    }
}

@available(*, unavailable)
extension ZstdDecompressor: Sendable {}
