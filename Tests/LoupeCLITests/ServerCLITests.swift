import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import Testing

/// Several `loupe server`s on one store: each with its own payload archive, all following the
/// store's aliases, exactly one running the scheduler — and another taking over when it dies.
@Suite(.serialized) struct ServerCLITests {
    static func server(_ arguments: [String], in dir: URL, log: String) async throws -> BackgroundLoupe {
        try await BackgroundLoupe(["server"] + arguments, in: dir, log: log, ready: /on 127\.0\.0\.1:(\d+)\./)
    }

    @Test func twoServersShareAStoreFollowPromotionsAndHandTheSchedulerOver() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 600).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "a.csv"], in: dir).status == 0)
        let training = ["--rounds", "20", "--num-leaves", "7", "--early-stopping", "0", "--calibration-fraction", "0.2",
                        "--threads", "1", "--quiet"]
        #expect(try await CLIRunner.run(["train", "--promote"] + training, in: dir).status == 0)

        let store = dir.appendingPathComponent("loupe-store")
        let common = ["--port", "0", "--metrics-port", "0", "--scheduler-lease", "2s", "--no-inbox"]
        // (--metrics-port 0 turns the endpoint off, as for `loupe serve`.)
        let a = try await Self.server(common + ["--instance", "a"], in: dir, log: "a.log")
        defer { a.stop() }
        let b = try await Self.server(common + ["--instance", "b"], in: dir, log: "b.log")
        defer { b.stop() }
        // Each records calls in an archive of its own; neither blocks the other.
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("loupe-store/capsule-a").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("loupe-store/capsule-b").path))

        // Exactly one runs the scheduler.
        #expect(try await eventually { a.holdsSchedulerLease(store: store) || b.holdsSchedulerLease(store: store) })
        let aLeads = a.holdsSchedulerLease(store: store)
        let (leader, follower) = aLeads ? (a, b) : (b, a)

        // Both serve production, and both follow a promotion.
        let diamond = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)
        let secret = try String(contentsOf: dir.appendingPathComponent("loupe-store/server.secret"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        for server in [a, b] {
            let client = try await LoupeClient.connect(.init(port: server.port, token: secret))
            #expect(try await client.predict(diamond).modelVersion == 1)
            await client.close()
        }
        #expect(try await CLIRunner.run(["train", "--promote"] + training, in: dir).status == 0)
        for server in [a, b] {
            let client = try await LoupeClient.connect(.init(port: server.port, token: secret))
            #expect(try await eventually { try await client.predict(diamond).modelVersion == 2 })
            await client.close()
        }

        // The leader dies: the other takes the scheduler over once the lease runs out.
        leader.kill()
        #expect(!follower.holdsSchedulerLease(store: store))
        #expect(try await eventually { follower.holdsSchedulerLease(store: store) })
    }
}

extension BackgroundLoupe {
    /// Whether the store's scheduler lease names this process.
    func holdsSchedulerLease(store: URL) -> Bool {
        let lease = store.appendingPathComponent("records/leases/scheduler.json")
        guard let data = try? Data(contentsOf: lease),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let holder = object["holder"] as? String
        else { return false }
        return holder.hasSuffix(":\(process.processIdentifier)")
    }
}
