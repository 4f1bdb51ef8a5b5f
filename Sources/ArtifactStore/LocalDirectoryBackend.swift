import Foundation

/// The default backend: a directory on a local (POSIX) filesystem.
///
///     <root>/
///       store.json                    format marker
///       lock                          flock(2) target for read-modify-write
///       blobs/sha256/ab/<hex>         zstd frames (content checksum); name = SHA-256 of raw bytes
///       datasets/<name>/<n>.json      dataset manifests
///       models/<name>/<n>.json        model manifests
///       aliases/<name>.json           alias records
///       tmp/<session>.lock            held (flock) by a live writer for its lifetime
///       tmp/<session>/                that writer's partial files
///
/// Every write is temp file → `fsync` → `rename` into place → `fsync` of the directory. A writer
/// that dies leaves at most files in its `tmp/<session>/`; the next open sweeps sessions whose
/// lock is no longer held (a live writer's files are left alone).
public final class LocalDirectoryBackend: ArtifactBackend {
    /// The store directory (absolute).
    public let root: String
    let files: any FileLayer
    /// This instance's temp directory; nil when opened read-only.
    private let session: UploadSession?

    /// Opens (creating if needed) the store directory at `root`, sweeping dead writers' temp files.
    /// With `readOnly`, opens an existing directory and writes nothing: no session, no sweep,
    /// and every write throws `readOnly`.
    public convenience init(root: String, readOnly: Bool = false) throws {
        try self.init(root: root, files: PosixFileLayer(), readOnly: readOnly)
    }

    init(root: String, files: any FileLayer, readOnly: Bool = false) throws {
        var absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        while absolute.count > 1 && absolute.hasSuffix("/") { absolute.removeLast() }
        self.root = absolute
        self.files = files
        if readOnly {
            guard try Self.mapErrors("opening the store at \(absolute)", { try files.status(absolute) })?.isDirectory == true else {
                throw StoreError(.notFound, "no store at \(absolute) (a command that writes creates one: loupe ingest, train or serve)")
            }
            session = nil
            return
        }
        try Self.createLayout(root: absolute, files: files)
        self.session = try Self.withLock(root: absolute, files: files) {
            let session = try UploadSession.start(root: absolute, files: files)
            _ = try Self.sweep(root: absolute, files: files, keeping: session.id, remove: true)
            return session
        }
    }

    public var description: String { "local directory \(root)" }

    // MARK: Paths

    func path(_ relative: String) -> String { root + "/" + relative }

    func blobDirectory(_ digest: BlobDigest) -> String {
        path("blobs/sha256/" + String(digest.hex.prefix(2)))
    }

    func blobPath(_ digest: BlobDigest) -> String { blobDirectory(digest) + "/" + digest.hex }

    public func location(of digest: BlobDigest) -> String { blobPath(digest) }

    // MARK: Blobs

    public func stageBlob() throws -> any BlobUpload {
        let temp = try writableSession().newTempPath(suffix: ".blob")
        let fd = try mapErrors("creating a temporary blob file") { try files.createFile(temp) }
        return LocalBlobUpload(backend: self, fd: fd, tempPath: temp)
    }

    public func openBlob(_ digest: BlobDigest) throws -> any BlobSource {
        let path = blobPath(digest)
        do {
            return LocalBlobSource(files: files, fd: try files.openForReading(path), path: path)
        } catch let error as SystemCallError where error.isNotFound {
            throw StoreError(.notFound, "blob \(digest) not found at \(path)", cause: error)
        } catch {
            throw Self.convert(error, "opening blob \(digest)")
        }
    }

    public func blobInfo(_ digest: BlobDigest) throws -> BlobInfo? {
        let status = try mapErrors("examining blob \(digest)") { try files.status(blobPath(digest)) }
        return status.map { BlobInfo(storedSize: $0.size, lastTouched: Date(timeIntervalSince1970: $0.modified)) }
    }

    public func confirmBlob(_ digest: BlobDigest) throws -> Bool {
        _ = try writableSession()
        return try mapErrors("confirming blob \(digest)") {
            let path = blobPath(digest)
            guard try files.status(path) != nil else { return false }
            do {
                try files.touch(path, time: nil)
            } catch let error as SystemCallError where error.isNotFound {
                return false
            }
            // The writer synced the directory after its rename, but if it was another process that
            // died in between, this makes the entry durable before a manifest points at it.
            try files.syncDirectory(blobDirectory(digest))
            return true
        }
    }

    public func listBlobs() throws -> [BlobDigest] {
        try mapErrors("listing blobs") {
            var digests: [BlobDigest] = []
            let base = path("blobs/sha256")
            for fanout in try files.list(base) where fanout.utf8.count == 2 {
                guard (try files.status(base + "/" + fanout))?.isDirectory == true else { continue }
                for name in try files.list(base + "/" + fanout) {
                    if let digest = BlobDigest(name), digest.hex == name, digest.hex.hasPrefix(fanout) {
                        digests.append(digest)
                    }
                }
            }
            return digests
        }
    }

    public func deleteBlob(_ digest: BlobDigest) throws {
        _ = try writableSession()
        do {
            try files.removeFile(blobPath(digest))
        } catch let error as SystemCallError where error.isNotFound {
            return
        } catch {
            throw Self.convert(error, "deleting blob \(digest)")
        }
    }

    /// Moves a finished upload into place (put-if-absent); called by ``LocalBlobUpload``.
    func install(tempPath: String, as digest: BlobDigest) throws -> Bool {
        let destination = blobPath(digest)
        if try files.status(destination) != nil {
            do {
                try files.touch(destination, time: nil)
                try files.removeFile(tempPath)
                return false
            } catch let error as SystemCallError where error.isNotFound {
                // Collected between the stat and the touch: install ours after all.
            }
        }
        try ensureDirectory(blobDirectory(digest), parent: path("blobs/sha256"))
        try files.rename(tempPath, destination)
        try files.syncDirectory(blobDirectory(digest))
        return true
    }

    // MARK: Documents

    public func readDocument(_ key: String) throws -> [UInt8]? {
        let path = self.path(key)
        let fd: FileDescriptor
        do {
            fd = try files.openForReading(path)
        } catch let error as SystemCallError where error.isNotFound {
            return nil
        } catch {
            throw Self.convert(error, "opening \(key)")
        }
        defer { files.close(fd) }
        return try mapErrors("reading \(key)") {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try files.read(fd, into: $0, path: path) }
                if n == 0 { return bytes }
                bytes.append(contentsOf: buffer[0..<n])
            }
        }
    }

    public func replaceDocument(_ key: String, with bytes: [UInt8]) throws {
        _ = try writableSession()
        let destination = path(key)
        let parent = String(destination[..<destination.lastIndex(of: "/")!])
        try mapErrors("writing \(key)") {
            // Kept so that a failure after the rename can put things back as they were.
            let previous = try readDocument(key)
            let createdParent = try files.makeDirectory(parent)
            do {
                if createdParent { try files.syncDirectory(String(parent[..<parent.lastIndex(of: "/")!])) }
                try writeAtomically(bytes, to: destination, directory: parent)
            } catch let failure {
                if failure is RenamedButNotSynced {
                    // The new bytes are visible but not known to be durable: undo, so that a
                    // failed write is not seen.
                    if let previous {
                        try? writeAtomically(previous, to: destination, directory: parent)
                    } else {
                        try? files.removeFile(destination)
                        try? files.syncDirectory(parent)
                    }
                }
                if createdParent { try? files.removeDirectory(parent) }
                throw (failure as? RenamedButNotSynced)?.error ?? failure
            }
        }
    }

    /// Temp file in this session → write → fsync → rename to `destination` → fsync `directory`.
    private func writeAtomically(_ bytes: [UInt8], to destination: String, directory: String) throws {
        let temp = try writableSession().newTempPath(suffix: ".json")
        let fd = try files.createFile(temp)
        var open = true
        do {
            try bytes.withUnsafeBytes { try files.write(fd, $0, path: temp) }
            try files.sync(fd, path: temp)
            files.close(fd)
            open = false
            try files.rename(temp, destination)
        } catch {
            if open { files.close(fd) }
            try? files.removeFile(temp)
            throw error
        }
        do {
            try files.syncDirectory(directory)
        } catch {
            throw RenamedButNotSynced(error: error)
        }
    }

    /// A rename that happened, followed by a directory fsync that failed.
    private struct RenamedButNotSynced: Error {
        let error: any Error
    }

    public func listDocuments(prefix: String) throws -> [String] {
        do {
            return try files.list(path(prefix)).filter { !$0.hasPrefix(".") }
        } catch let error as SystemCallError where error.isNotFound {
            return []
        } catch {
            throw Self.convert(error, "listing \(prefix)")
        }
    }

    public func documentSize(_ key: String) throws -> Int64? {
        try mapErrors("examining \(key)") { try files.status(path(key))?.size }
    }

    // MARK: Lock and housekeeping

    public func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        _ = try writableSession()
        return try Self.withLock(root: root, files: files, body)
    }

    public func abandonedUploads() throws -> [String] {
        // Under the lock: a session being created holds it, and must not see its lock probed.
        // Read-only, the lock is taken through a descriptor opened for reading (flock needs no
        // write permission); a store without a lock file has had no writer to leave anything.
        try Self.withLock(root: root, files: files, readOnly: session == nil) {
            try mapErrors("listing temporary files") {
                try Self.sweep(root: root, files: files, keeping: session?.id ?? "", remove: false)
            }
        } ?? []
    }

    /// The session writes go through, or `readOnly` when there is none.
    private func writableSession() throws -> UploadSession {
        guard let session else { throw StoreError(.readOnly, "\(self) is open read-only") }
        return session
    }

    /// Removes (or, with `remove == false`, lists) temp files of sessions whose writer is gone.
    /// Must run under the store lock so that no session is being created meanwhile.
    static func sweep(root: String, files: any FileLayer, keeping live: String, remove: Bool) throws -> [String] {
        let tmp = root + "/tmp"
        let entries: [String]
        do {
            entries = try files.list(tmp)
        } catch let error as SystemCallError where error.isNotFound {
            return []  // a copy made without tmp/ (e.g. synced from an S3 store): nothing left behind
        }
        var found: [String] = []
        let lockNames = Set(entries.filter { $0.hasSuffix(".lock") })
        for entry in entries {
            let path = tmp + "/" + entry
            if entry.hasSuffix(".lock") {
                let id = String(entry.dropLast(5))
                if id == live { continue }
                let fd: FileDescriptor
                do { fd = try files.openForReading(path) } catch let e as SystemCallError where e.isNotFound { continue }
                defer { files.close(fd) }
                guard try files.lockExclusive(fd, wait: false, path: path) else { continue }  // writer alive
                found += try removeTree(tmp + "/" + id, files: files, remove: remove)
                if remove { try? files.removeFile(path) }
            } else if entry == live {
                continue
            } else if let status = try files.status(path) {  // nil: removed with its lock file above
                if status.isDirectory {
                    if !lockNames.contains(entry + ".lock") {
                        found += try removeTree(path, files: files, remove: remove)
                    }
                } else {
                    found.append(path)
                    if remove { try? files.removeFile(path) }
                }
            }
        }
        return found
    }

    private static func removeTree(_ directory: String, files: any FileLayer, remove: Bool) throws -> [String] {
        let names: [String]
        do { names = try files.list(directory) } catch let e as SystemCallError where e.isNotFound { return [] }
        let paths = names.map { directory + "/" + $0 }
        if remove {
            // Best effort: junk that cannot be removed must not stop the store from opening;
            // verify reports whatever is left.
            for path in paths { try? files.removeFile(path) }
            try? files.removeDirectory(directory)
        }
        return paths
    }

    static func withLock<T>(root: String, files: any FileLayer, _ body: () throws -> T) throws -> T {
        let lockPath = root + "/lock"
        // A fresh descriptor per acquisition: flock conflicts between open file descriptions, so
        // this excludes other threads of this process as well as other processes.
        let fd = try mapErrors("opening the store lock") { try files.openForLocking(lockPath) }
        defer { files.close(fd) }
        _ = try mapErrors("taking the store lock") { try files.lockExclusive(fd, wait: true, path: lockPath) }
        return try body()
    }

    /// `withLock`, or with `readOnly` the same through a descriptor opened for reading (nil,
    /// without running `body`, when the lock file does not exist).
    static func withLock<T>(root: String, files: any FileLayer, readOnly: Bool, _ body: () throws -> T) throws -> T? {
        guard readOnly else { return try withLock(root: root, files: files, body) }
        let lockPath = root + "/lock"
        let fd: FileDescriptor
        do {
            fd = try files.openForReading(lockPath)
        } catch let error as SystemCallError where error.isNotFound {
            return nil
        } catch {
            throw convert(error, "opening the store lock")
        }
        defer { files.close(fd) }
        _ = try mapErrors("taking the store lock") { try files.lockExclusive(fd, wait: true, path: lockPath) }
        return try body()
    }

    private static func createLayout(root: String, files: any FileLayer) throws {
        try mapErrors("creating the store at \(root)") {
            var prefix = ""
            var parent = "/"
            for component in root.split(separator: "/") {
                prefix += "/" + component
                if try files.makeDirectory(prefix) { try files.syncDirectory(parent) }
                parent = prefix
            }
            for sub in ["blobs", "blobs/sha256", "datasets", "models", "aliases", "records", "tmp"] {
                let dir = root + "/" + sub
                if try files.makeDirectory(dir) {
                    try files.syncDirectory(String(dir[..<dir.lastIndex(of: "/")!]))
                }
            }
        }
    }

    /// Creates `directory` if missing, making its entry in `parent` durable.
    func ensureDirectory(_ directory: String, parent: String) throws {
        if try files.makeDirectory(directory) { try files.syncDirectory(parent) }
    }

    // MARK: Errors

    func mapErrors<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        try Self.mapErrors(context(), body)
    }

    static func mapErrors<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw convert(error, context())
        }
    }

    static func convert(_ error: any Error, _ context: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? SystemCallError {
            return StoreError(error.isDiskFull ? .diskFull : .io, "\(context): \(error)", cause: error)
        }
        return StoreError(.io, "\(context): \(error)", cause: error)
    }
}
