import ArgumentParser
import Foundation
import LoupeClient
import LoupeProtocol

/// `--server HOST:PORT` and `--token`: call a running server instead of working locally.
struct ServerOptions: ParsableArguments {
    @Option(help: "Call a running server at HOST:PORT instead of working on the store directly.")
    var server: String?

    @Option(help: "The token for --server (default: $LOUPE_TOKEN, else the store's server secret).")
    var token: String?

    /// Connects to `--server`, or nil when it was not given.
    func connect(store: StoreOptions, clientName: String = "loupe-cli") async throws -> LoupeClient? {
        guard let server else { return nil }
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), port > 0, port < 65536 else {
            throw CLIError("--server must be HOST:PORT, got \"\(server)\"")
        }
        let token = try token ?? ProcessInfo.processInfo.environment["LOUPE_TOKEN"] ?? ServerSecret.read(store: store.path)
        do {
            return try await LoupeClient.connect(
                LoupeClient.Configuration(host: String(parts[0]), port: port, token: token, clientName: clientName))
        } catch {
            throw CLIError("\(server): \(error.oneLine)")
        }
    }
}

/// The shared secret that lets local tools (the CLI, the gateway) call the model server:
/// `<store>/server.secret`, created on first `loupe serve`, readable by its owner only.
enum ServerSecret {
    static func path(store: String) -> String { store + "/server.secret" }

    /// The internal secret from `file`, else `$LOUPE_INTERNAL_SECRET`, else the store's (made
    /// when missing if `create`).
    static func resolve(file: String?, store: String, create: Bool) throws -> String {
        if let file {
            guard let data = FileManager.default.contents(atPath: file),
                let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !text.isEmpty
            else { throw CLIError("cannot read the internal secret from \(file)") }
            return text
        }
        if let env = ProcessInfo.processInfo.environment["LOUPE_INTERNAL_SECRET"], !env.isEmpty { return env }
        return create ? try readOrCreate(store: store) : try read(store: store)
    }

    static func read(store: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path(store: store)),
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !text.isEmpty
        else {
            throw CLIError("no token: pass --token, set LOUPE_TOKEN, or run next to the server's store (\(path(store: store)))")
        }
        return text
    }

    /// The store's secret, created (32 random bytes, hex, mode 0600) if missing.
    static func readOrCreate(store: String) throws -> String {
        if let existing = try? read(store: store) { return existing }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let path = path(store: store)
        guard FileManager.default.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
        else { throw CLIError("cannot write \(path)") }
        return secret
    }
}

/// A port option: 0...65535, 0 meaning any free port (or off, for a metrics port). The socket
/// layer would otherwise truncate a larger number to 16 bits and bind another port.
func validatePort(_ port: Int, option: String) throws {
    guard (0...65535).contains(port) else {
        throw ValidationError("\(option) must be a port number, 1-65535 (0: any free port), got \(port)")
    }
}

extension ProtocolError {
    var oneLine: String { "\(code): \(message)" }
}
