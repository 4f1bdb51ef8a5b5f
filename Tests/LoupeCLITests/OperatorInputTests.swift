import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an operator types and reads: ports checked and named, negative numbers taken as values,
/// read-only commands that write nothing, dates with their zone.
@Suite(.serialized) struct OperatorInputTests {
    static let training = ["--rounds", "20", "--num-leaves", "7", "--early-stopping", "0", "--threads", "1"]

    @Test func portsOutsideTheRangeAreRefused() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("secret".utf8).write(to: dir.appendingPathComponent("secret"))
        // Before the check, 70000 bound port 4464 and the server ran (stopped here by the timeout).
        for (arguments, option, value) in [
            (["serve", "--port", "70000", "--server-port", "0", "--metrics-port", "0"] + Self.training, "--port", "70000"),
            (["serve", "--port", "0", "--server-port", "65536", "--metrics-port", "0"], "--server-port", "65536"),
            (["serve", "--port", "0", "--server-port", "0", "--metrics-port", "-1"], "--metrics-port", "-1"),
            (["gateway", "--backend", "127.0.0.1:1", "--internal-secret-file", "secret", "--port", "70000",
              "--metrics-port", "0"], "--port", "70000"),
        ] {
            let result = try await CLIRunner.run(arguments, in: dir, timeout: 60)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("\(option) must be a port number, 1-65535 (0: any free port), got \(value)"),
                    "\(arguments): \(result.stderr)")
        }
    }

    @Test func aBindFailureNamesThePortAndTheComponent() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("secret".utf8).write(to: dir.appendingPathComponent("secret"))
        let (socket, port) = try listeningSocket()
        defer { close(socket) }
        for (arguments, component) in [
            (["gateway", "--backend", "127.0.0.1:1", "--internal-secret-file", "secret", "--port", "\(port)",
              "--metrics-port", "0"], "the gateway"),
            (["gateway", "--backend", "127.0.0.1:1", "--internal-secret-file", "secret", "--port", "0",
              "--metrics-port", "\(port)"], "the gateway's metrics endpoint"),
            (["serve", "--port", "\(port)", "--server-port", "0", "--metrics-port", "0"] + Self.training, "the gateway"),
            (["serve", "--port", "0", "--server-port", "\(port)", "--metrics-port", "0"], "the model server"),
            (["serve", "--port", "0", "--server-port", "0", "--metrics-port", "\(port)"],
             "the model server's metrics endpoint"),
        ] {
            let result = try await CLIRunner.run(arguments, in: dir, timeout: 180)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("\(component) cannot listen on 127.0.0.1:\(port): "), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("in use"), "\(result.stderr)")
        }
    }

    @Test func negativeNumbersAreValuesAndOutOfRange() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = try await CLIRunner.run(["train", "--learning-rate", "-1", "--quiet"] + Self.training, in: dir)
        #expect(train.status != 0)
        #expect(!train.stderr.contains("Missing value"), "\(train.stderr)")
        #expect(train.stderr.contains("learning rate must be in (0, 1], got -1"), "\(train.stderr)")
        let serve = try await CLIRunner.run(["serve", "--port", "-1"], in: dir, timeout: 60)
        #expect(serve.stderr.contains("--port must be a port number, 1-65535 (0: any free port), got -1"), "\(serve.stderr)")
        let gateway = try await CLIRunner.run(
            ["gateway", "--backend", "127.0.0.1:1", "--max-connections", "-5"], in: dir, timeout: 60)
        #expect(gateway.stderr.contains("--max-connections must be at least 1, got -5"), "\(gateway.stderr)")
    }

    /// `models list/show`, `store verify/du` and `status` only read: run as a user who cannot
    /// write the store (root, as in CI, writes anyway: then as nobody through setpriv), they
    /// work, and the store is byte for byte, entry for entry, as it was.
    @Test func readOnlyCommandsWorkOnAStoreTheUserCannotWrite() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 400).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "a.csv", "--store", "s"], in: dir).status == 0)
        let train = try await CLIRunner.run(["train", "--promote", "--quiet", "--store", "s"] + Self.training, in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        let store = dir.appendingPathComponent("s").path
        let setpriv = URL(fileURLWithPath: "/usr/bin/setpriv")
        let asOther = getuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv.path)
        if !asOther { try chmodTree(store, writable: false) }
        let before = try snapshot(store)
        for command in [["models", "list"], ["models", "list", "--json"], ["models", "show", "diamonds@production"],
                        ["store", "verify"], ["store", "du"], ["status", "--json"]] {
            let arguments = command + ["--store", "s"]
            let result = try await CLIRunner.offPool {
                asOther
                    ? try CLIRunner.runBlocking(
                        ["--reuid=65534", "--regid=65534", "--clear-groups", "--", CLIRunner.binary.path] + arguments,
                        in: dir, executable: setpriv)
                    : try CLIRunner.runBlocking(arguments, in: dir)
            }
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(try snapshot(store) == before, "\(command) changed the store")
        }
        if !asOther { try chmodTree(store, writable: true) }
        // The snapshot sees what a write session leaves (tmp/ changed): the check can fail.
        let writable = try snapshot(store)
        #expect(try await CLIRunner.run(["models", "promote", "1", "--store", "s"], in: dir).status == 0)
        #expect(try snapshot(store) != writable)
    }

    @Test func jsonDatesAreISO8601UTC() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 400).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "a.csv"], in: dir).status == 0)
        #expect(try await CLIRunner.run(["train", "--promote", "--quiet"] + Self.training, in: dir).status == 0)
        let iso = /"created" : "20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ"/
        let show = try await CLIRunner.run(["models", "show"], in: dir)
        #expect(show.stdout.contains(iso), "\(show.stdout)")
        let list = try await CLIRunner.run(["models", "list", "--json"], in: dir)
        #expect(list.stdout.contains(iso), "\(list.stdout)")
        #expect(!list.stdout.contains(/"created" : \d/))
    }

    /// A socket listening on a free loopback port, as another program holding it would.
    private func listeningSocket() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw CocoaError(.fileWriteUnknown) }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Every entry under `root` with what a write would change: kind, size, mode, mtime, inode.
    private func snapshot(_ root: String) throws -> [String: String] {
        var entries: [String: String] = [:]
        for path in [""] + (FileManager.default.subpaths(atPath: root) ?? []) {
            var info = stat()
            guard lstat(root + "/" + path, &info) == 0 else { continue }
            entries[path] = "\(info.st_mode) \(info.st_size) \(info.st_ino) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
        return entries
    }

    private func chmodTree(_ root: String, writable: Bool) throws {
        for path in [""] + (FileManager.default.subpaths(atPath: root) ?? []) {
            let full = root + "/" + path
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            let mode = info.st_mode & 0o7777
            chmod(full, writable ? mode | 0o200 : mode & ~0o222)
        }
    }
}
