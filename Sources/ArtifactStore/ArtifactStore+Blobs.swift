import Crypto
import Zstd

extension ArtifactStore {
    /// Stores `bytes` as a blob and returns its digest. A blob that is already stored is not
    /// written again (its timestamp is refreshed so garbage collection keeps it).
    ///
    /// - Parameter compressionLevel: overrides ``Configuration/compressionLevel`` for this blob.
    @discardableResult
    public func putBlob(_ bytes: [UInt8], compressionLevel: Int32? = nil) throws -> BlobDigest {
        try bytes.withUnsafeBytes { try putBlob($0, compressionLevel: compressionLevel) }
    }

    /// Stores `bytes` as a blob and returns its digest (see ``putBlob(_:)-([UInt8])``).
    @discardableResult
    public func putBlob(_ bytes: UnsafeRawBufferPointer, compressionLevel: Int32? = nil) throws -> BlobDigest {
        let digest = BlobDigest(of: bytes)
        if try backend.confirmBlob(digest) { return digest }
        let chunk = configuration.chunkSize
        let written = try putBlob(expectedSize: bytes.count, compressionLevel: compressionLevel) { writer in
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                try writer.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
            }
        }
        assert(written == digest)
        return digest
    }

    /// Streams a blob in: `body` hands the raw bytes to the writer in chunks of any size; they
    /// are hashed and compressed on the fly into a temp file that becomes the blob only when
    /// complete. Memory use is one chunk plus zstd's window, whatever the size.
    ///
    /// - Parameters:
    ///   - expectedSize: the total, if known; recorded in the frame header (and checked).
    ///   - compressionLevel: overrides ``Configuration/compressionLevel`` for this blob.
    @discardableResult
    public func putBlob(
        expectedSize: Int? = nil,
        compressionLevel: Int32? = nil,
        writing body: (BlobWriter) throws -> Void
    ) throws -> BlobDigest {
        let upload = try backend.stageBlob()
        do {
            let level = configuration.level(forSize: expectedSize, preferred: compressionLevel)
            let writer = try BlobWriter(upload: upload, level: level, expectedSize: expectedSize)
            try body(writer)
            let digest = try writer.finish()
            _ = try upload.commit(as: digest)
            return digest
        } catch {
            upload.abort()
            throw error
        }
    }

    /// Streams the file at `path` into a blob (for a dataset CSV, pass
    /// `configuration.datasetCompressionLevel`).
    @discardableResult
    public func putBlob(contentsOfFile path: String, compressionLevel: Int32? = nil) throws -> BlobDigest {
        let files = PosixFileLayer()
        return try LocalDirectoryBackend.mapErrors("reading \(path)") {
            let size = try files.status(path)?.size
            let fd = try files.openForReading(path)
            defer { files.close(fd) }
            var buffer = [UInt8](repeating: 0, count: configuration.chunkSize)
            return try putBlob(expectedSize: size.map { Int($0) }, compressionLevel: compressionLevel) { writer in
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try files.read(fd, into: $0, path: path) }
                    if n == 0 { return }
                    try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            }
        }
    }

    /// Whether a blob is stored (without reading it).
    public func containsBlob(_ digest: BlobDigest) throws -> Bool {
        try backend.blobInfo(digest) != nil
    }

    /// Reads a whole blob, verified: throws `corruptBlob` (naming the digest and location) rather
    /// than return bytes that do not hash to `digest`.
    ///
    /// - Parameter maxSize: refuse blobs larger than this (use the streaming read for those).
    public func readBlob(_ digest: BlobDigest, maxSize: Int = Int.max) throws -> [UInt8] {
        var output: [UInt8] = []
        try streamBlob(digest, sizeHint: { size in
            // The header is not verified yet: trust it only up to a bounded reservation.
            output.reserveCapacity(Int(min(size, UInt64(min(maxSize, 64 << 20)))))
        }) { chunk in
            guard output.count + chunk.count <= maxSize else {
                throw StoreError(.invalidArgument, "blob \(digest) is larger than the limit of \(maxSize) bytes")
            }
            output.append(contentsOf: chunk)
        }
        return output
    }

    /// Streams a blob out in chunks, re-hashing as it goes. The last call may be followed by a
    /// `corruptBlob` error: a consumer must discard what it received when this throws.
    ///
    /// - Returns: the number of raw bytes delivered.
    @discardableResult
    public func readBlob(_ digest: BlobDigest, chunks body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        try streamBlob(digest, sizeHint: { _ in }, body)
    }

    /// Writes a blob's content to the file at `path`, atomically: the file appears (replacing any
    /// old one) only once every byte has been verified.
    public func readBlob(_ digest: BlobDigest, toFile path: String) throws {
        let files = PosixFileLayer()
        let temp = path + ".partial-" + randomHex(4)
        try LocalDirectoryBackend.mapErrors("writing \(path)") {
            let fd = try files.createFile(temp)
            do {
                try streamBlob(digest, sizeHint: { _ in }) { try files.write(fd, $0, path: temp) }
                try files.sync(fd, path: temp)
                files.close(fd)
                try files.rename(temp, path)
            } catch {
                files.close(fd)
                try? files.removeFile(temp)
                throw error
            }
        }
    }

    /// The core read: stored bytes → zstd (checksum) → SHA-256 → `body`, with a hint of the
    /// content size from the frame header when it has one.
    @discardableResult
    func streamBlob(
        _ digest: BlobDigest,
        sizeHint: (UInt64) throws -> Void,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int64 {
        let location = backend.location(of: digest)
        let source = try backend.openBlob(digest)
        let decompressor: ZstdDecompressor
        do { decompressor = try ZstdDecompressor() } catch { throw StoreError(.io, "blob \(digest): \(error)") }
        var hasher = SHA256()
        var total: Int64 = 0
        // Uninitialised: verify reads many small blobs, and zeroing a chunk each time would show.
        var buffer = [UInt8](unsafeUninitializedCapacity: configuration.chunkSize) { $1 = $0.count }
        var first = true
        do {
            while true {
                let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { raw in
                    let input = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                    if first, let size = ZstdDecompressor.contentSize(ofFrameStartingWith: input) { try sizeHint(size) }
                    first = false
                    try decompressor.decompress(input) { chunk in
                        hasher.update(bufferPointer: chunk)
                        total += Int64(chunk.count)
                        try body(chunk)
                    }
                }
            }
            try decompressor.finish()
        } catch let error as ZstdError {
            throw StoreError(.corruptBlob, "blob \(digest) at \(location) is corrupt or truncated: \(error.message)", cause: error)
        }
        let actual = BlobDigest(hasher.finalize())
        guard actual == digest else {
            throw StoreError(
                .corruptBlob,
                "blob \(digest) at \(location) is corrupt: its content hashes to \(actual)")
        }
        return total
    }
}

/// Receives a blob's raw bytes during ``ArtifactStore/putBlob(expectedSize:writing:)``.
///
/// Valid only inside that call; one thread at a time.
public final class BlobWriter {
    private let upload: any BlobUpload
    private let compressor: ZstdCompressor
    private var hasher = SHA256()
    private var finished = false
    /// Raw bytes written so far.
    public private(set) var bytesWritten: Int64 = 0

    init(upload: any BlobUpload, level: Int32, expectedSize: Int?) throws {
        self.upload = upload
        do {
            self.compressor = try ZstdCompressor(level: level, pledgedSize: expectedSize)
        } catch {
            throw StoreError(.invalidArgument, "cannot start compression at level \(level): \(error)")
        }
    }

    /// Appends raw bytes to the blob.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw StoreError(.invalidArgument, "BlobWriter used after its putBlob returned") }
        hasher.update(bufferPointer: bytes)
        bytesWritten += Int64(bytes.count)
        let upload = self.upload
        do {
            try compressor.compress(bytes) { try upload.write($0) }
        } catch let error as ZstdError {
            throw StoreError(.invalidArgument, "compressing a blob: \(error.message)", cause: error)
        }
    }

    /// Appends raw bytes to the blob.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func finish() throws -> BlobDigest {
        finished = true
        let upload = self.upload
        do {
            try compressor.finish { try upload.write($0) }
        } catch let error as ZstdError {
            // The usual cause: fewer or more bytes than the pledged expectedSize.
            throw StoreError(
                .invalidArgument, "finishing a blob after \(bytesWritten) bytes: \(error.message)", cause: error)
        }
        return BlobDigest(hasher.finalize())
    }
}

@available(*, unavailable)
extension BlobWriter: Sendable {}
