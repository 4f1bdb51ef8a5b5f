import ArtifactStore
import Catalog
import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import ModelServer
import NIOCore
import NIOPosix
import RequestLog
import Testing
import TreeTraining
import RetrainService

/// A model server with the request log on: a store with a small promoted model, a guestbook of
/// `engine`, a server on a free port.
struct LoggedServer {
    static let secret = "test-secret"
    let scratch: Scratch
    let catalog: Catalog
    let server: ModelServer
    let log: RequestLog

    static func start(_ engine: Engine) async throws -> LoggedServer? {
        let scratch = try Scratch()
        let catalog = try Catalog.open(at: scratch.url.appendingPathComponent("store").path)
        do {
            try catalog.ingest(csv: csv(rows: 600), dataset: "diamonds", source: "test")
            let dataset = try catalog.latestDataset()
            let trained = try Trainer(configuration: TrainingConfiguration(
                rounds: 20, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
                calibrationFraction: 0.2, threads: 1)).train(try catalog.table(of: dataset))
            let manifest = try catalog.register(trained, dataset: dataset.reference)
            _ = try catalog.store.promote(name: manifest.name, version: manifest.version)
        }
        guard let book = try await makeGuestbook(engine, scratch: scratch) else {
            scratch.remove()
            return nil
        }
        let metrics = ServerMetrics()
        let log = try RequestLog(
            configuration: RequestLogConfiguration(archiveDirectory: scratch.archive, syncAppends: false),
            guestbook: book, store: catalog.store, registry: metrics.registry)
        let server = ModelServer(
            configuration: ModelServerConfiguration(port: 0, modelPollInterval: .milliseconds(50), metricsPort: nil),
            catalog: catalog, authenticator: GatewayTrustingAuthenticator(internalSecret: secret), metrics: metrics,
            jobs: RetrainService(catalog: catalog), requestLog: log)
        try await server.start()
        return LoggedServer(scratch: scratch, catalog: catalog, server: server, log: log)
    }

    func client() async throws -> LoupeClient {
        try await LoupeClient.connect(.init(
            host: "127.0.0.1", port: server.port!, token: Self.secret, connectTimeout: .seconds(60), callTimeout: .seconds(60)))
    }

    func stop() async {
        await server.shutdown()
        scratch.remove()
    }

    static func csv(rows: Int) -> [UInt8] { Array(SyntheticDiamonds.csv(rows: rows).utf8) }
}

let sample = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)

extension RequestLogSuites {
    @Suite struct ServerRecordingTests {
        @Test(arguments: Engine.allCases) func everyMethodLeavesExactlyOneRowWithTheRightFields(engine: Engine) async throws {
            guard let fixture = try await LoggedServer.start(engine) else { return }
            defer { Task { await fixture.stop() } }
            let client = try await fixture.client()
            let reply = try await client.predict(sample)
            var bad = sample
            bad.carat = -1
            await #expect(throws: ProtocolError.self) { try await client.predict(bad) }
            _ = try await client.health()
            _ = try await client.listModels()
            var similar = Loupe_V1_FindSimilarRequest()
            similar.carat = 1
            similar.cut = .ideal
            similar.color = .g
            similar.clarity = .si1
            _ = try await client.findSimilar(similar)
            await #expect(throws: ProtocolError.self) { try await client.job("no-such-job") }
            let batch = try await client.batchPredict(Loupe_V1_DiamondColumns(Array(repeating: sample, count: 10)))
            #expect(batch.prices.count == 10)
            var retrain = Loupe_V1_RetrainRequest()
            retrain.promotionMargin = 5  // refused before any job starts
            await #expect(throws: ProtocolError.self) { try await client.retrain(retrain) }
            await client.close()
            // A method id the server does not know (through the in-process path: the client only
            // sends known ones).
            let unknown = Frame(header: FrameHeader(flags: .request, methodID: 99, requestID: 7), payload: ByteBuffer())
            let refused = try await fixture.server.answerInProcess(
                unknown, principal: Principal(name: "trusted", scopes: [.admin]), on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
            #expect(refused.header.flags.contains(.error))
            #expect(await fixture.log.flush(timeout: patience))

            let rows = try await fixture.log.guestbook.rows(GuestbookQuery(limit: 100))
            #expect(rows.count == 9)
            var byMethod: [String: [GuestbookRow]] = [:]
            for r in rows { byMethod[r.method, default: []].append(r) }
            #expect(byMethod["Predict"]?.count == 2)
            for method in ["Health", "ListModels", "FindSimilar", "GetJob", "BatchPredict", "Retrain", "unknown"] {
                #expect(byMethod[method]?.count == 1, "\(method)")
            }
            #expect(rows.allSatisfy { $0.principal == "trusted" && $0.latencyMicroseconds >= 0 })
            let ok = try #require(byMethod["Predict"]?.first { $0.status == "OK" })
            #expect(ok.price == reply.price && ok.low == reply.low && ok.high == reply.high && ok.level == reply.level)
            #expect(ok.diamond == LoggedDiamond(carat: 1.01, cut: "Ideal", color: "G", clarity: "VS1", depth: 61.8, table: 56,
                                                  x: 6.43, y: 6.47, z: 3.99))
            #expect(ok.modelName == "diamonds" && ok.modelVersion == 1 && ok.rows == 1 && ok.error == nil)
            let failed = try #require(byMethod["Predict"]?.first { $0.status != "OK" })
            #expect(failed.status == "INVALID_ARGUMENT" && failed.error?.contains("carat must be > 0") == true)
            #expect(failed.price == nil && failed.diamond?.carat == -1)
            #expect(byMethod["GetJob"]?.first?.status == "NOT_FOUND")
            #expect(byMethod["Retrain"]?.first?.error?.contains("promotion_margin") == true)
            #expect(byMethod["unknown"]?.first?.status == "UNIMPLEMENTED")
            let batchRow = try #require(byMethod["BatchPredict"]?.first)
            #expect(batchRow.rows == 10 && batchRow.modelVersion == 1 && batchRow.status == "OK")
            // The counters are on the server's /metrics registry.
            let text = fixture.server.metrics.exposition()
            #expect(text.contains("loupe_requestlog_written_total 9"))
            #expect(text.contains("loupe_requestlog_spilled_total 0"))
        }

        @Test func aBatchOf100kRowsIsOneRowAndOneArchivedPayload() async throws {
            guard let fixture = try await LoggedServer.start(.sqlite) else { return }
            defer { Task { await fixture.stop() } }
            let client = try await fixture.client()
            let n = 100_000
            let columns = {
                var columns = Loupe_V1_DiamondColumns()
                columns.carat = (0..<n).map { 0.3 + Double($0 % 200) / 100 }
                columns.cut = Array(repeating: .ideal, count: n)
                columns.color = Array(repeating: .g, count: n)
                columns.clarity = Array(repeating: .si1, count: n)
                columns.depth = Array(repeating: 61.8, count: n)
                columns.table = Array(repeating: 57, count: n)
                columns.x = columns.carat.map { 6.4 * $0.squareRoot() }
                columns.y = columns.x
                columns.z = columns.x.map { $0 * 0.618 }
                return columns
            }()
            let reply = try await client.batchPredict(columns)
            #expect(reply.prices.count == n)
            await client.close()
            #expect(await fixture.log.flush(timeout: patience))
            let rows = try await fixture.log.guestbook.rows(GuestbookQuery(limit: 10))
            #expect(rows.count == 1)
            #expect(rows.first?.rows == n && rows.first?.method == "BatchPredict")
            let (store, archive) = (fixture.catalog.store, fixture.scratch.archive)
            var records: [ArchivedCall] = []
            try PayloadArchiveReader.export(store: store, directory: archive, from: nil, to: nil) { records.append($0) }
            #expect(records.count == 1)
            let record = try #require(records.first)
            let request = try Loupe_V1_BatchPredictRequest(serializedBytes: record.request)
            let response = try Loupe_V1_BatchPredictResponse(serializedBytes: record.response)
            #expect(request.rows.carat == columns.carat)
            #expect(response.prices == reply.prices)
        }

        @Test func theGatewaysInProcessPathRecordsThePartner() async throws {
            guard let fixture = try await LoggedServer.start(.sqlite) else { return }
            defer { Task { await fixture.stop() } }
            var request = Loupe_V1_PredictRequest()
            request.diamond = Loupe_V1_Diamond(sample)
            let frame = try Frame(header: .request(.predict, requestID: 42), message: request)
            let partner = Principal(name: "acme", scopes: [.predict], tokenID: "abc123def456")
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let reply = try await fixture.server.answerInProcess(frame, principal: partner, on: loop).get()
            #expect(!reply.header.flags.contains(.error))
            // A scope the partner lacks: refused, and recorded as such.
            let list = try Frame(header: .request(.listModels, requestID: 43), message: Loupe_V1_ListModelsRequest())
            let refused = try await fixture.server.answerInProcess(list, principal: partner, on: loop).get()
            #expect(refused.header.flags.contains(.error))
            #expect(await fixture.log.flush(timeout: patience))
            let rows = try await fixture.log.guestbook.rows(GuestbookQuery(principal: "acme", limit: 10))
            #expect(rows.count == 2)
            #expect(rows.allSatisfy { $0.tokenID == "abc123def456" })
            let predicted = try #require(rows.first { $0.method == "Predict" })
            #expect(predicted.requestID == 42 && predicted.diamond?.carat == 1.01 && predicted.modelVersion == 1)
            #expect(predicted.price == (try reply.decode(Loupe_V1_PredictResponse.self)).price)
            #expect(rows.first { $0.method == "ListModels" }?.status == "PERMISSION_DENIED")
        }

        @Test func aCallPastItsDeadlineIsRecordedAsSuchWithoutTheAnswerItDidNotGive() async throws {
            guard let fixture = try await LoggedServer.start(.sqlite) else { return }
            defer { Task { await fixture.stop() } }
            // 50k rows cannot be priced within 1 ms (a debug build takes far longer; release ~5 ms).
            let n = 50_000
            var request = Loupe_V1_BatchPredictRequest()
            request.rows = Loupe_V1_DiamondColumns(Array(repeating: sample, count: n))
            let frame = try Frame(
                header: .request(.batchPredict, requestID: 9, rowCount: UInt32(n), deadlineMilliseconds: 1), message: request)
            let reply = try await fixture.server.answerInProcess(
                frame, principal: Principal(name: "acme", scopes: [.predict]), on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
            #expect(try reply.decode(Loupe_V1_Status.self).code == .deadlineExceeded)
            #expect(await fixture.log.flush(timeout: patience))
            let row = try #require(try await fixture.log.guestbook.rows(GuestbookQuery(limit: 10)).first)
            #expect(row.status == "DEADLINE_EXCEEDED" && row.error?.contains("past its deadline of 1 ms") == true)
            #expect(row.rows == n && row.modelName == nil && row.modelVersion == nil)
        }
    }
}
