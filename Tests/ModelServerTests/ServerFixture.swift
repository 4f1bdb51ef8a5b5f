import Catalog
import DataCleaning
import DiamondSchema
import Foundation
import Logging
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import ModelServer
import Reports
import RetrainService
import NIOCore
import TreeTraining

/// A store with a small promoted model, and a server on a free port.
struct ServerFixture {
    static let secret = "test-secret"
    let url: URL
    let catalog: Catalog
    let server: ModelServer

    static func csv(rows: Int, seed: Int = 0) -> [UInt8] { Array(SyntheticDiamonds.csv(rows: rows, seed: seed).utf8) }

    static let quickTraining = TrainingConfiguration(
        rounds: 20, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
        calibrationFraction: 0.2, threads: 1)

    /// Trains and registers a model version (promoted when asked).
    @discardableResult
    func addModel(promote: Bool, rounds: Int = 20) throws -> Int {
        let dataset = try catalog.latestDataset()
        var config = Self.quickTraining
        config.rounds = rounds
        let trained = try Trainer(configuration: config).train(try catalog.table(of: dataset))
        let manifest = try catalog.register(trained, dataset: dataset.reference)
        if promote { _ = try catalog.store.promote(name: manifest.name, version: manifest.version) }
        return manifest.version
    }

    static func start(
        withModel: Bool = true, logger: Logger = Logger(label: "loupe.server"),
        configure: (inout ModelServerConfiguration) -> Void = { _ in }
    ) async throws -> ServerFixture {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-server-\(UUID().uuidString)")
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: csv(rows: 600), dataset: "diamonds", source: "test")
        var configuration = ModelServerConfiguration(port: 0, modelPollInterval: .milliseconds(50), metricsPort: 0)
        configure(&configuration)
        // Assembled as `loupe serve` does: Retrain and GetJob on a job runner whose promotions the
        // server swaps in at once.
        let retrain = RetrainService(catalog: catalog)
        let server = ModelServer(
            configuration: configuration, catalog: catalog, authenticator: StaticSecretAuthenticator(secret: secret),
            jobs: retrain, reportPage: { ModelReportPage(catalog: catalog).page(model: "diamonds", version: $0) },
            logger: logger)
        retrain.whenPromoted { _ in server.reloadProduction() }
        let fixture = ServerFixture(url: url, catalog: catalog, server: server)
        if withModel { try fixture.addModel(promote: true) }
        try await server.start()
        return fixture
    }

    var port: Int { server.port! }

    /// A client; its handshake may take long under the whole suite's load (the server answers it
    /// from a Swift task, which waits for a cooperative thread the CPU-heavy tests hold: 5 s was
    /// not always enough), so it gets the same generous wait as a call.
    func client(token: String = ServerFixture.secret, timeout: TimeAmount? = .seconds(30)) async throws -> LoupeClient {
        try await LoupeClient.connect(.init(
            host: "127.0.0.1", port: port, token: token, connectTimeout: .seconds(60), callTimeout: timeout))
    }

    /// A raw socket to the server; its reads wait long for the reason `client` does.
    func raw() throws -> RawConnection { try RawConnection(port: port, timeout: 60) }

    func stop() async {
        await server.shutdown()
        try? FileManager.default.removeItem(at: url)
    }
}

let sampleDiamond = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)

extension RawConnection {
    /// Sends a Hello with the fixture's secret and returns the reply frame.
    func handshake() async throws -> Frame? { try await handshake(token: ServerFixture.secret) }
}
