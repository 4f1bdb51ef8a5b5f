import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an operator types and reads: ports checked and named, negative numbers taken as values.
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
}
