#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Cleaner {
    /// Reads the CSV file at `path` and cleans it. A file that cannot be opened or read
    /// throws `CleaningError.Code.unreadableFile` naming the path and the system's reason.
    public static func clean(
        fileAt path: String, configuration: CleaningConfiguration = .standard
    ) throws(CleaningError) -> CleaningResult {
        try clean(csv: readFile(at: path), configuration: configuration)
    }

    /// The bytes of the file at `path`.
    static func readFile(at path: String) throws(CleaningError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw unreadable(path, errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw unreadable(path, errno) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw unreadable(path, EISDIR) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(Int(info.st_size), 0) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                return bytes
            } else if errno != EINTR {
                throw unreadable(path, errno)
            }
        }
    }

    private static func unreadable(_ path: String, _ code: Int32) -> CleaningError {
        CleaningError(code: .unreadableFile, message: "cannot read \"\(path)\": \(String(cString: strerror(code)))")
    }
}
