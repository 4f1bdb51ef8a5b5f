import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where tests put the files they write (token stores, gateway logs): one directory per test
/// process, removed when the process exits, so a full run leaves nothing behind in the
/// temporary directory even when a test's own clean-up never runs (a deferred `Task { stop() }`
/// the process outlives, a log kept for a later check).
public enum TestFiles {
    /// `<tmp>/loupe-tests-<pid>`, created on first use.
    public static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tests-\(getpid())")
        try? FileManager.default.removeItem(at: url)  // a reused pid's leftovers
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestFiles.directory) }
        return url
    }()

    /// A fresh name under `directory`: `<prefix>-<uuid><suffix>`.
    public static func unique(_ prefix: String, suffix: String = "") -> URL {
        directory.appendingPathComponent("\(prefix)-\(UUID().uuidString)\(suffix)")
    }
}
