import Catalog
import DiamondSchema
import Foundation
import LiveAccuracy
import Logging
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import ModelServer
import NIOCore
import RequestLog
import TreeTraining

/// A store with a good production model and a much worse one, and a server with a request log
/// on SQLite, following the aliases every 50 ms.
struct RolloutFixture {
    static let secret = "rollout-secret"
    let url: URL
    let catalog: Catalog
    let guestbook: SQLiteGuestbook
    let requestLog: RequestLog
    let server: ModelServer
    /// Production (20 rounds) and the deliberately worse version (1 round).
    let good: Int
    let worse: Int

    static func version(_ catalog: Catalog, rounds: Int) throws -> Int {
        let dataset = try catalog.latestDataset()
        let configuration = TrainingConfiguration(
            rounds: rounds, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
            calibrationFraction: 0.2, threads: 1)
        let trained = try Trainer(configuration: configuration).train(try catalog.table(of: dataset))
        return try catalog.register(trained, dataset: dataset.reference).version
    }

    static func start() async throws -> RolloutFixture {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-rollout-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Array(SyntheticDiamonds.csv(rows: 600).utf8), dataset: "diamonds", source: "test")
        let good = try version(catalog, rounds: 20)
        let worse = try version(catalog, rounds: 1)
        try catalog.promote(name: "diamonds", version: good)
        let guestbook = try SQLiteGuestbook(path: url.path + "/requests.sqlite", backgroundNice: 0)
        let requestLog = try RequestLog(
            configuration: RequestLogConfiguration(archiveDirectory: url.path + "/capsule", syncAppends: false),
            guestbook: guestbook, store: catalog.store)
        let server = ModelServer(
            configuration: ModelServerConfiguration(port: 0, modelPollInterval: .milliseconds(50), metricsPort: 0),
            catalog: catalog, authenticator: StaticSecretAuthenticator(secret: secret), requestLog: requestLog,
            outcomes: OutcomeService(catalog: catalog, guestbook: guestbook))
        try await server.start()
        return RolloutFixture(
            url: url, catalog: catalog, guestbook: guestbook, requestLog: requestLog, server: server, good: good, worse: worse)
    }

    func client() async throws -> LoupeClient {
        try await LoupeClient.connect(.init(
            host: "127.0.0.1", port: server.port!, token: Self.secret, connectTimeout: .seconds(60), callTimeout: .seconds(60)))
    }

    /// Waits (polling, up to a generous bound: never a timing assertion) until `condition` holds.
    func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<1200 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw OutcomeError("timed out waiting until \(what)")
    }

    func stop() async {
        await server.shutdown()
        await guestbook.close()
        try? FileManager.default.removeItem(at: url)
    }
}

/// Stones the models never trained on, with their true prices, as an outcomes file reads them.
func unseenOutcomes(_ rows: Int, seed: Int = 3) throws -> [Outcome] {
    let (outcomes, rejected) = try OutcomeFile.parse(Array(SyntheticDiamonds.csv(rows: rows, seed: seed).utf8))
    precondition(rejected.isEmpty)
    return outcomes
}
