#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call, on which path, and `errno`.
struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    let operation: String
    let path: String
    let errno: Int32

    var isNotFound: Bool { errno == ENOENT }
    var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }

    var description: String {
        "\(operation)(\(path)): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// What `stat` tells the store about a file.
struct FileStatus: Sendable, Equatable {
    var size: Int64
    /// Last modification, seconds since 1970.
    var modified: Double
    var isDirectory: Bool
}

/// An open file descriptor handed out by a ``FileLayer``.
struct FileDescriptor: Sendable, Hashable {
    let raw: Int32
}

/// Every filesystem call the local store makes, so tests can inject failures and crashes.
///
/// All paths are absolute. Calls throw ``SystemCallError``. Implementations must be safe to
/// call from several threads at once (the POSIX one holds no state).
protocol FileLayer: Sendable {
    /// `mkdir(path, 0755)`; returns false when it already exists.
    func makeDirectory(_ path: String) throws -> Bool
    /// Creates a new file for writing (`O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC`, mode 0644).
    func createFile(_ path: String) throws -> FileDescriptor
    /// Opens an existing file for reading.
    func openForReading(_ path: String) throws -> FileDescriptor
    /// Opens (creating if needed) a file whose descriptor is used only for `flock`.
    func openForLocking(_ path: String) throws -> FileDescriptor
    /// Writes all of `bytes`, retrying short writes.
    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, path: String) throws
    /// Reads up to `buffer.count` bytes; 0 at end of file.
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int
    /// `fsync` of a file's data and metadata.
    func sync(_ fd: FileDescriptor, path: String) throws
    /// Closes a descriptor (releasing any `flock` held through it).
    func close(_ fd: FileDescriptor)
    /// `rename(from, to)`: atomic replace within one filesystem.
    func rename(_ from: String, _ to: String) throws
    /// `fsync` of a directory, making renames and creations in it durable.
    func syncDirectory(_ path: String) throws
    /// `unlink` of a file.
    func removeFile(_ path: String) throws
    /// `rmdir` of an empty directory.
    func removeDirectory(_ path: String) throws
    /// The names in a directory, without `.` and `..`, in no particular order.
    func list(_ path: String) throws -> [String]
    /// `stat`, or nil when nothing is at `path`.
    func status(_ path: String) throws -> FileStatus?
    /// Sets a file's modification time to `time` (seconds since 1970) or to now.
    func touch(_ path: String, time: Double?) throws
    /// `flock` exclusive; with `wait == false` returns false instead of blocking when held elsewhere.
    func lockExclusive(_ fd: FileDescriptor, wait: Bool, path: String) throws -> Bool
}

/// The real thing: direct POSIX calls.
struct PosixFileLayer: FileLayer {
    func makeDirectory(_ path: String) throws -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        let e = errno
        if e == EEXIST { return false }
        throw SystemCallError(operation: "mkdir", path: path, errno: e)
    }

    func createFile(_ path: String) throws -> FileDescriptor {
        try openRetrying("open", path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
    }

    func openForReading(_ path: String) throws -> FileDescriptor {
        try openRetrying("open", path, O_RDONLY | O_CLOEXEC, 0)
    }

    func openForLocking(_ path: String) throws -> FileDescriptor {
        try openRetrying("open", path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    }

    private func openRetrying(_ op: String, _ path: String, _ flags: Int32, _ mode: mode_t) throws -> FileDescriptor {
        while true {
            let fd = open(path, flags, mode)
            if fd >= 0 { return FileDescriptor(raw: fd) }
            let e = errno
            if e != EINTR { throw SystemCallError(operation: op, path: path, errno: e) }
        }
    }

    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            #if canImport(Darwin)
            let n = Darwin.write(fd.raw, bytes.baseAddress! + offset, bytes.count - offset)
            #else
            let n = Glibc.write(fd.raw, bytes.baseAddress! + offset, bytes.count - offset)
            #endif
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw SystemCallError(operation: "write", path: path, errno: e)
            }
            offset += n
        }
    }

    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
        while true {
            #if canImport(Darwin)
            let n = Darwin.read(fd.raw, buffer.baseAddress, buffer.count)
            #else
            let n = Glibc.read(fd.raw, buffer.baseAddress, buffer.count)
            #endif
            if n >= 0 { return n }
            let e = errno
            if e != EINTR { throw SystemCallError(operation: "read", path: path, errno: e) }
        }
    }

    func sync(_ fd: FileDescriptor, path: String) throws {
        if fsync(fd.raw) != 0 { throw SystemCallError(operation: "fsync", path: path, errno: errno) }
    }

    func close(_ fd: FileDescriptor) {
        #if canImport(Darwin)
        _ = Darwin.close(fd.raw)
        #else
        _ = Glibc.close(fd.raw)
        #endif
    }

    func rename(_ from: String, _ to: String) throws {
        #if canImport(Darwin)
        let r = Darwin.rename(from, to)
        #else
        let r = Glibc.rename(from, to)
        #endif
        if r != 0 { throw SystemCallError(operation: "rename", path: "\(from) -> \(to)", errno: errno) }
    }

    func syncDirectory(_ path: String) throws {
        let fd = try openRetrying("open", path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        defer { close(fd) }
        if fsync(fd.raw) != 0 { throw SystemCallError(operation: "fsync", path: path, errno: errno) }
    }

    func removeFile(_ path: String) throws {
        if unlink(path) != 0 { throw SystemCallError(operation: "unlink", path: path, errno: errno) }
    }

    func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 { throw SystemCallError(operation: "rmdir", path: path, errno: errno) }
    }

    func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    func status(_ path: String) throws -> FileStatus? {
        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw SystemCallError(operation: "stat", path: path, errno: e)
        }
        #if canImport(Darwin)
        let modified = Double(st.st_mtimespec.tv_sec) + Double(st.st_mtimespec.tv_nsec) / 1e9
        #else
        let modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        #endif
        return FileStatus(size: Int64(st.st_size), modified: modified, isDirectory: (st.st_mode & S_IFMT) == S_IFDIR)
    }

    func touch(_ path: String, time: Double?) throws {
        let result: Int32
        if let time {
            let whole = time.rounded(.down)
            let spec = timespec(tv_sec: Int(whole), tv_nsec: Int((time - whole) * 1e9))
            var times = (spec, spec)
            result = withUnsafePointer(to: &times) {
                $0.withMemoryRebound(to: timespec.self, capacity: 2) { utimensat(AT_FDCWD, path, $0, 0) }
            }
        } else {
            result = utimensat(AT_FDCWD, path, nil, 0)
        }
        if result != 0 { throw SystemCallError(operation: "utimensat", path: path, errno: errno) }
    }

    func lockExclusive(_ fd: FileDescriptor, wait: Bool, path: String) throws -> Bool {
        while true {
            if flock(fd.raw, wait ? LOCK_EX : (LOCK_EX | LOCK_NB)) == 0 { return true }
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK && !wait { return false }
            throw SystemCallError(operation: "flock", path: path, errno: e)
        }
    }
}
