#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// This process's (this backend instance's) temp directory, held by an flock for its lifetime.
final class UploadSession: Sendable {
    let id: String
    let directory: String
    private let lockPath: String
    private let lockFD: FileDescriptor
    private let files: any FileLayer

    private init(id: String, directory: String, lockPath: String, lockFD: FileDescriptor, files: any FileLayer) {
        self.id = id
        self.directory = directory
        self.lockPath = lockPath
        self.lockFD = lockFD
        self.files = files
    }

    /// Creates `tmp/<id>.lock` (held) and `tmp/<id>/`. Call under the store lock.
    static func start(root: String, files: any FileLayer) throws -> UploadSession {
        let id = randomHex(8)
        let lockPath = root + "/tmp/" + id + ".lock"
        let directory = root + "/tmp/" + id
        return try LocalDirectoryBackend.mapErrors("starting a write session in \(root)/tmp") {
            let fd = try files.openForLocking(lockPath)
            do {
                guard try files.lockExclusive(fd, wait: false, path: lockPath) else {
                    throw SystemCallError(operation: "flock", path: lockPath, errno: EWOULDBLOCK)
                }
                _ = try files.makeDirectory(directory)
            } catch {
                files.close(fd)
                throw error
            }
            return UploadSession(id: id, directory: directory, lockPath: lockPath, lockFD: fd, files: files)
        }
    }

    func newTempPath(suffix: String) -> String { directory + "/" + randomHex(8) + suffix }

    deinit {
        // Best effort: a clean shutdown leaves nothing behind; a crash leaves this for the next sweep.
        if let names = try? files.list(directory) {
            for name in names { try? files.removeFile(directory + "/" + name) }
        }
        try? files.removeDirectory(directory)
        try? files.removeFile(lockPath)
        files.close(lockFD)
    }
}

func randomHex(_ bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    var text = ""
    for _ in 0..<bytes {
        let byte = UInt8.random(in: 0...255, using: &generator)
        text += String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
    }
    return text
}
