/// A blob upload into `tmp/<session>/`.
final class LocalBlobUpload: BlobUpload {
    private let backend: LocalDirectoryBackend
    private var fd: FileDescriptor?
    private let tempPath: String
    private var done = false

    init(backend: LocalDirectoryBackend, fd: FileDescriptor, tempPath: String) {
        self.backend = backend
        self.fd = fd
        self.tempPath = tempPath
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let fd, !done else { throw StoreError(.io, "write to a finished upload \(tempPath)") }
        try backend.mapErrors("writing a blob") { try backend.files.write(fd, bytes, path: tempPath) }
    }

    func commit(as digest: BlobDigest) throws -> Bool {
        guard let fd, !done else { throw StoreError(.io, "commit of a finished upload \(tempPath)") }
        defer { done = true }
        return try backend.mapErrors("writing blob \(digest)") {
            do {
                try backend.files.sync(fd, path: tempPath)
                backend.files.close(fd)
                self.fd = nil
                return try backend.install(tempPath: tempPath, as: digest)
            } catch {
                cleanUp()
                throw error
            }
        }
    }

    func abort() {
        guard !done else { return }
        done = true
        cleanUp()
    }

    private func cleanUp() {
        if let fd { backend.files.close(fd) }
        fd = nil
        try? backend.files.removeFile(tempPath)
    }

    deinit { abort() }
}

/// A blob's stored bytes on disk.
final class LocalBlobSource: BlobSource {
    private let files: any FileLayer
    private let fd: FileDescriptor
    private let path: String

    init(files: any FileLayer, fd: FileDescriptor, path: String) {
        self.files = files
        self.fd = fd
        self.path = path
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try LocalDirectoryBackend.mapErrors("reading \(path)") { try files.read(fd, into: buffer, path: path) }
    }

    deinit { files.close(fd) }
}
