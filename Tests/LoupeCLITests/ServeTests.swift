import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import Testing

/// `loupe serve` as a newcomer runs it: an empty store, then real predictions through the
/// Swift client and the CLI.
@Suite(.serialized) struct ServeTests {
    @Test func serveOnAnEmptyStoreThenPredict() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["serve", "--port", "0", "--metrics-port", "0", "--rounds", "30", "--num-leaves", "15",
                             "--threads", "2"]
        process.currentDirectoryURL = dir
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        // The banner names the port and a command that prices a diamond.
        var banner = ""
        let reader = out.fileHandleForReading
        let deadline = Date().addingTimeInterval(180)
        while !banner.contains("Stop with Ctrl-C"), Date() < deadline, process.isRunning {
            banner += String(decoding: reader.availableData, as: UTF8.self)
        }
        let port = try #require(banner.firstMatch(of: /on 127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }, "\(banner)")
        #expect(banner.contains("loupe predict --server 127.0.0.1:\(port)"))
        #expect(banner.contains("model diamonds v1"))

        let secret = try String(contentsOf: dir.appendingPathComponent("loupe-store/server.secret"), encoding: .utf8)
        let client = try await LoupeClient.connect(.init(port: port, token: secret))
        let diamond = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)
        let reply = try await client.predict(diamond)
        #expect(reply.price > 2000 && reply.price < 20000)
        #expect(reply.modelVersion == 1)
        await client.close()

        let cli = try CLIRunner.run([
            "predict", "--server", "127.0.0.1:\(port)", "--carat", "0.5", "--cut", "Premium", "--color", "E",
            "--clarity", "SI1", "--depth", "62", "--table", "58", "--x", "5.1", "--y", "5.05", "--z", "3.15"], in: dir)
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(cli.stdout.contains("[diamonds v1]"))
        let models = try CLIRunner.run(["models", "list", "--server", "127.0.0.1:\(port)"], in: dir)
        #expect(models.stdout.contains("production"))

        // SIGTERM: a graceful shutdown, exit 0.
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
