import ArgumentParser
import Catalog
import Foundation
import LoupeClient
import LoupeProtocol

/// `--store`, `--server` and `--token`, read as `loupe`'s commands read them.
struct TargetOptions: ParsableArguments {
    @Option(help: "The artifact store directory (default: $LOUPE_STORE, else ./loupe-store).")
    var store: String?

    @Option(help: "The running server (or gateway) to call, HOST:PORT.")
    var server: String?

    @Option(help: "The token for --server (default: $LOUPE_TOKEN, else the store's server secret).")
    var token: String?

    /// The store directory.
    var storePath: String {
        store ?? ProcessInfo.processInfo.environment["LOUPE_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "loupe-store"
    }

    func catalog() throws -> Catalog {
        try BenchError.oneLine("store \(storePath)") { try Catalog.open(at: storePath) }
    }

    /// `--token`, else `$LOUPE_TOKEN`, else `<store>/server.secret` (written by `loupe serve`).
    func resolvedToken() throws -> String {
        if let token = token ?? ProcessInfo.processInfo.environment["LOUPE_TOKEN"] { return token }
        let path = storePath + "/server.secret"
        guard let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !text.isEmpty
        else {
            throw BenchError("no token: pass --token, set LOUPE_TOKEN, or run next to the server's store (\(path))")
        }
        return text
    }

    /// A client connected to `--server`.
    func connect(clientName: String) async throws -> LoupeClient {
        guard let server else { throw BenchError("no --server") }
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), port > 0, port < 65536 else {
            throw BenchError("--server must be HOST:PORT, got \"\(server)\"")
        }
        let token = try resolvedToken()
        do {
            return try await LoupeClient.connect(
                LoupeClient.Configuration(host: String(parts[0]), port: port, token: token, clientName: clientName))
        } catch {
            throw BenchError("\(server): \(error.code): \(error.message)")
        }
    }
}
