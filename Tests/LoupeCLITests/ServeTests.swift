import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import Testing

/// `loupe serve` as a newcomer runs it: an empty store, then real predictions through the
/// gateway (with the admin token it prints once) and the CLI; partner tokens made, used and
/// revoked with `loupe token`; and no raw token left in its log or its databases.
@Suite(.serialized) struct ServeTests {
    @Test func serveOnAnEmptyStoreThenPredictThroughTheGateway() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["serve", "--port", "0", "--server-port", "0", "--metrics-port", "0", "--rounds", "30",
                             "--num-leaves", "15", "--threads", "2", "--health-check-ms", "100"]
        process.currentDirectoryURL = dir
        let out = Pipe()
        let log = dir.appendingPathComponent("serve.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        // The banner names both ports, the admin token (once) and a command that prices a diamond.
        // Read on a thread of its own: the blocking reads must not hold a cooperative thread.
        let reader = out.fileHandleForReading
        let running = process
        let banner = try await CLIRunner.offPool {
            var banner = ""
            let deadline = Date().addingTimeInterval(180)
            while !banner.contains("Stop with Ctrl-C"), Date() < deadline, running.isRunning {
                banner += String(decoding: reader.availableData, as: UTF8.self)
            }
            return banner
        }
        let port = try #require(banner.firstMatch(of: /on 127\.0\.0\.1:(\d+) \(the gateway/).flatMap { Int($0.1) }, "\(banner)")
        let serverPort = try #require(banner.firstMatch(of: /model server on\s+127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) })
        let admin = try #require(banner.firstMatch(of: /(loupe_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6})/).map { String($0.1) })
        #expect(banner.contains("Demo call through the gateway"))
        #expect(banner.contains("loupe predict --server 127.0.0.1:\(port)"))
        #expect(banner.contains("model diamonds v1"))

        let client = try await LoupeClient.connect(.init(port: port, token: admin))
        #expect(client.welcome.principal == "admin" && client.welcome.scopes == ["admin"])
        let diamond = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)
        let reply = try await client.predict(diamond)
        #expect(reply.price > 2000 && reply.price < 20000)
        #expect(reply.modelVersion == 1)
        await client.close()

        let predict = ["--carat", "0.5", "--cut", "Premium", "--color", "E", "--clarity", "SI1", "--depth", "62",
                       "--table", "58", "--x", "5.1", "--y", "5.05", "--z", "3.15"]
        let viaGateway = try await CLIRunner.run(["predict", "--server", "127.0.0.1:\(port)", "--token", admin] + predict, in: dir)
        #expect(viaGateway.status == 0, "\(viaGateway.stderr)")
        #expect(viaGateway.stdout.contains("[diamonds v1]"))
        // The store's secret is for the model server only (local tools); the gateway wants a token.
        let direct = try await CLIRunner.run(["predict", "--server", "127.0.0.1:\(serverPort)"] + predict, in: dir)
        #expect(direct.status == 0, "\(direct.stderr)")
        let secretAtGateway = try await CLIRunner.run(["predict", "--server", "127.0.0.1:\(port)"] + predict, in: dir)
        #expect(secretAtGateway.status != 0 && secretAtGateway.stderr.contains("UNAUTHENTICATED"))
        let models = try await CLIRunner.run(["models", "list", "--server", "127.0.0.1:\(port)", "--token", admin], in: dir)
        #expect(models.stdout.contains("production"))

        // A partner token: made, listed (never shown again), used, revoked.
        let created = try await CLIRunner.run(["token", "create", "--name", "acme", "--calls-per-second", "50"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let partner = try #require(created.stdout.firstMatch(of: /(loupe_([0-9A-Za-z]{12})_[0-9A-Za-z]{32}_[0-9A-Za-z]{6})/))
        let (partnerToken, partnerID) = (String(partner.1), String(partner.2))
        let list = try await CLIRunner.run(["token", "list"], in: dir)
        #expect(list.stdout.contains("acme") && list.stdout.contains("admin") && list.stdout.contains(partnerID))
        #expect(!list.stdout.contains(partnerToken) && !list.stdout.contains(admin))
        let show = try await CLIRunner.run(["token", "show", partnerID], in: dir)
        #expect(show.stdout.contains("\"name\" : \"acme\"") && !show.stdout.contains(partnerToken))
        let asPartner = try await CLIRunner.run(["predict", "--server", "127.0.0.1:\(port)", "--token", partnerToken] + predict, in: dir)
        #expect(asPartner.status == 0, "\(asPartner.stderr)")
        let partnerClient = try await LoupeClient.connect(.init(port: port, token: partnerToken))
        await #expect { try await partnerClient.listModels() } throws: { ($0 as? ProtocolError)?.code == .permissionDenied }
        #expect(try await CLIRunner.run(["token", "revoke", partnerID], in: dir).status == 0)
        var refused = false
        for _ in 0..<100 where !refused {
            do { _ = try await partnerClient.predict(diamond) } catch { refused = error.code == .unauthenticated }
            if !refused { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(refused)
        let audit = try await CLIRunner.run(["token", "audit"], in: dir)
        #expect(audit.stdout.contains("permission_denied") && audit.stdout.contains(partnerID))

        // SIGTERM: a graceful shutdown, exit 0.
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        // No raw token in the log or the store's files.
        var files = [log.path]
        let store = dir.appendingPathComponent("loupe-store")
        for name in try FileManager.default.contentsOfDirectory(atPath: store.path) where name.hasPrefix("tokens.sqlite") {
            files.append(store.appendingPathComponent(name).path)
        }
        #expect(files.count >= 2)
        for path in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            for token in [admin, partnerToken] {
                #expect(data.range(of: Data(token.utf8)) == nil, "\(path)")
                #expect(data.range(of: Data(token.split(separator: "_")[2].utf8)) == nil, "\(path) holds a secret")
            }
        }
    }
}
