#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import DataCleaning

@Suite("Cleaning a file")
struct FileTests {
    private func temporaryPath(_ name: String) -> String {
        "/tmp/loupe-cleaning-\(getpid())-\(name)"
    }

    @Test func readsAndCleansAFile() throws {
        let path = temporaryPath("dirty.csv")
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        try #require(fd >= 0)
        let written = dirtyCSV.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        try #require(written == dirtyCSV.count)
        let fromFile = try Cleaner.clean(fileAt: path)
        let fromBytes = try Cleaner.clean(csv: dirtyCSV)
        #expect(fromFile.clean == fromBytes.clean)
        #expect(fromFile.quarantine == fromBytes.quarantine)
        #expect(fromFile.report == fromBytes.report)
    }

    @Test func aMissingFileNamesThePathAndTheReason() throws {
        let path = temporaryPath("does-not-exist.csv")
        let error = try #require(throws: CleaningError.self) { try Cleaner.clean(fileAt: path) }
        #expect(error.code == .unreadableFile)
        #expect(error.message == "cannot read \"\(path)\": No such file or directory")
    }

    @Test func aDirectoryIsNotAFile() throws {
        let error = try #require(throws: CleaningError.self) { try Cleaner.clean(fileAt: "/tmp") }
        #expect(error.code == .unreadableFile)
        #expect(error.message.contains("Is a directory"))
    }

    @Test func rawBufferEntryPointMatches() throws {
        let viaRaw = try dirtyCSV.withUnsafeBytes { try Cleaner.clean(bytes: $0) }
        #expect(viaRaw.clean == (try Cleaner.clean(csv: dirtyCSV)).clean)
    }
}
