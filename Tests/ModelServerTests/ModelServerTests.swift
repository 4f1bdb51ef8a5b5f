import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import ModelServer
import NIOCore
import Synchronization
import Testing

@Suite(.serialized) struct ModelServerCallTests {
    @Test func handshakeAndPredict() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        #expect(client.welcome.principal == "trusted")
        #expect(client.welcome.scopes == ["admin", "models:read", "predict"])
        #expect(client.welcome.limits.maxBatchRows == 100_000)
        let reply = try await client.predict(sampleDiamond)
        #expect(reply.price > 0 && reply.low < reply.price && reply.price < reply.high)
        #expect(reply.modelName == "diamonds" && reply.modelVersion == 1)
        #expect(reply.level == 0.9)
        let health = try await client.health()
        #expect(health.ready && health.modelLoaded && health.modelVersion == 1)
        await client.close()
    }

    @Test func invalidDiamondsGetFieldViolations() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        var bad = sampleDiamond
        bad.carat = -1
        await #expect { try await client.predict(bad) } throws: { error in
            guard let e = error as? ProtocolError else { return false }
            return e.code == .invalidArgument && e.message.contains("carat must be > 0")
                && e.fieldViolations.first?.field == "diamond.carat"
        }
        var request = Loupe_V1_PredictRequest()
        request.diamond = Loupe_V1_Diamond(sampleDiamond)
        request.diamond.cut = .unspecified
        await #expect { let _: Loupe_V1_PredictResponse = try await client.call(.predict, request) } throws: {
            ($0 as? ProtocolError)?.message.contains("cut is missing") == true
        }
        await #expect { try await client.predict(sampleDiamond, level: 1.5) } throws: {
            ($0 as? ProtocolError)?.code == .invalidArgument
        }
        // The connection survives call errors.
        #expect(try await client.predict(sampleDiamond).price > 0)
        await client.close()
    }

    @Test func batchPricesValidRowsAndReportsTheRest() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        var diamonds = Array(repeating: sampleDiamond, count: 300)
        diamonds[7].carat = 0
        diamonds[299].depth = 75  // inconsistent with the dimensions
        var columns = Loupe_V1_DiamondColumns(diamonds)
        columns.color[42] = .unspecified
        let reply = try await client.batchPredict(columns)
        #expect(reply.prices.count == 300 && reply.lows.count == 300 && reply.highs.count == 300)
        #expect(reply.rowErrors.map(\.row) == [7, 42, 299])
        #expect(reply.rowErrors.map(\.field) == ["carat", "color", "depth"])
        #expect(reply.prices[7].isNaN && reply.prices[42].isNaN && !reply.prices[0].isNaN)
        let single = try await client.predict(sampleDiamond)
        #expect(reply.prices[0] == single.price)

        // The header's row count must match the payload.
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = Loupe_V1_DiamondColumns([sampleDiamond, sampleDiamond])
        await #expect { let _: Loupe_V1_BatchPredictResponse = try await client.call(.batchPredict, request, rowCount: 3) } throws: {
            ($0 as? ProtocolError)?.message.contains("header says 3 rows") == true
        }
        var ragged = request
        ragged.rows.carat.append(1)
        await #expect { let _: Loupe_V1_BatchPredictResponse = try await client.call(.batchPredict, ragged, rowCount: 2) } throws: {
            ($0 as? ProtocolError)?.message.contains("differ in length") == true
        }
        await client.close()
    }

    @Test func batchRowLimitIsEnforced() async throws {
        let fixture = try await ServerFixture.start { $0.maxBatchRows = 50 }
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        #expect(client.welcome.limits.maxBatchRows == 50)
        await #expect { try await client.batchPredict(Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 51))) } throws: {
            ($0 as? ProtocolError)?.code == .resourceExhausted
        }
        #expect(try await client.batchPredict(Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 50))).prices.count == 50)
        await client.close()
    }

    @Test func listModelsFindSimilarAndSelectors() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        try fixture.addModel(promote: false, rounds: 5)
        let client = try await fixture.client()
        let models = try await client.listModels()
        #expect(models.models.map(\.version) == [1, 2])
        #expect(models.models[0].aliases == ["production"])
        #expect(models.models[0].dataset == "diamonds" && models.models[0].metrics.rmse > 0)
        // As documented: holdout rows counted, LightGBM-style parameter names.
        #expect(models.models[0].metrics.rows > 0)
        #expect(models.models[0].parameters.contains { $0.name == "num_leaves" && $0.value == "7" })
        #expect(models.models[0].parameters.contains { $0.name == "num_iterations" && $0.value == "20" })
        #expect(models.models[0].parameters.contains { $0.name == "learning_rate" })
        #expect(!models.models[0].parameters.contains { $0.name.contains { $0.isUppercase } })
        var selector = Loupe_V1_ModelSelector()
        selector.version = 2
        let v2 = try await client.predict(sampleDiamond, model: selector)
        #expect(v2.modelVersion == 2)
        selector.version = 9
        await #expect { try await client.predict(sampleDiamond, model: selector) } throws: {
            ($0 as? ProtocolError)?.code == .notFound
        }
        // An unknown alias is NOT_FOUND, like an unknown name or version (docs/PROTOCOL.md).
        var unknownAlias = Loupe_V1_ModelSelector()
        unknownAlias.alias = "canary-of-nothing"
        await #expect { try await client.predict(sampleDiamond, model: unknownAlias) } throws: {
            ($0 as? ProtocolError)?.code == .notFound
        }

        var similar = Loupe_V1_FindSimilarRequest()
        similar.carat = 1.0
        similar.cut = .ideal
        similar.color = .g
        similar.clarity = .si1
        similar.count = 3
        let found = try await client.findSimilar(similar)
        #expect(found.diamonds.count == 3)
        #expect(found.diamonds.allSatisfy { $0.diamond.cut == .ideal && $0.diamond.color == .g && $0.price > 0 })
        #expect(found.dataset == "diamonds" && found.datasetVersion == 1)
        similar.count = 1000
        await #expect { try await client.findSimilar(similar) } throws: { ($0 as? ProtocolError)?.code == .resourceExhausted }
        await client.close()
    }

    /// Rows like the fixture's, priced `factor` times what the fixture's formula gives.
    static func labelledRows(_ count: Int, factor: Double) -> Loupe_V1_LabelledRows {
        let stones = (0..<count).map { i -> Diamond in
            var d = sampleDiamond
            d.clarity = .si1
            d.carat = 0.4 + Double(i % 150) / 100
            d.x = (6.4 * d.carat.squareRoot() * 100).rounded() / 100
            d.y = d.x
            d.z = (d.x * 0.618 * 100).rounded() / 100
            d.depth = ((100 * d.z / d.x) * 10).rounded() / 10
            d.table = 57
            return d
        }
        var rows = Loupe_V1_LabelledRows()
        rows.diamonds = Loupe_V1_DiamondColumns(stones)
        rows.prices = stones.map { (factor * 3500 * $0.carat * $0.carat * 1.15).rounded() + Double.random(in: 0...12) }
        return rows
    }

    @Test func retrainGuardrailsCanBeAcceptedOverTheProtocol() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        func run(_ accept: [String]) async throws -> Loupe_V1_Job {
            var request = Loupe_V1_RetrainRequest()
            request.rows = Self.labelledRows(300, factor: 3)
            request.accept = accept
            let started = try await client.retrain(request)
            var job = try await client.job(started.jobID)
            for _ in 0..<600 where job.stage != .succeeded && job.stage != .failed {
                try await Task.sleep(for: .milliseconds(50))
                job = try await client.job(started.jobID)
            }
            return job
        }
        let refused = try await run([])
        #expect(refused.stage == .succeeded && !refused.result.promoted)
        #expect(refused.result.decision.hasPrefix("rejected: label-shift"), "\(refused.result.decision)")
        let accepted = try await run(["label-shift"])
        #expect(accepted.result.decision.contains("label-shift accepted by"), "\(accepted.result.decision)")
        await #expect { try await run(["no-such-guardrail"]) } throws: {
            ($0 as? ProtocolError)?.code == .invalidArgument && "\($0)".contains("accept names no guardrail")
        }
        await client.close()
    }

    @Test func retrainRunsAJobAndSwapsTheModel() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        var request = Loupe_V1_RetrainRequest()
        var reuse = Loupe_V1_ReuseParameters()
        reuse.version = 1
        request.reuse = reuse
        var rows = Loupe_V1_LabelledRows()
        let extra = (0..<300).map { i -> Diamond in
            var d = sampleDiamond
            d.carat = 0.5 + Double(i) / 200
            d.x = (6.4 * d.carat.squareRoot() * 100).rounded() / 100
            d.y = d.x
            d.z = (d.x * 0.618 * 100).rounded() / 100
            d.depth = ((100 * d.z / d.x) * 10).rounded() / 10
            return d
        }
        rows.diamonds = Loupe_V1_DiamondColumns(extra)
        rows.prices = extra.map { 3000 * $0.carat * $0.carat + 17 }
        request.rows = rows
        request.promotionMargin = 0.5  // hard to beat: the champion stays
        let started = try await client.retrain(request)
        #expect(started.jobID.hasPrefix("job-"))
        var job = try await client.job(started.jobID)
        for _ in 0..<600 where job.stage != .succeeded && job.stage != .failed {
            try await Task.sleep(for: .milliseconds(50))
            job = try await client.job(started.jobID)
        }
        #expect(job.stage == .succeeded, "\(job.message)")
        #expect(job.result.model.version == 2)
        #expect(job.result.decision.contains("holdout RMSE"))
        #expect(job.percent == 100)
        await #expect { try await client.job("job-999") } throws: { ($0 as? ProtocolError)?.code == .notFound }
        #expect(try fixture.catalog.store.latestDataset(name: "diamonds")?.version == 2)
        await client.close()
    }
}

@Suite(.serialized) struct ModelServerConnectionTests {
    @Test func badTokenIsRefusedAndClosed() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        await #expect { try await fixture.client(token: "nope") } throws: { ($0 as? ProtocolError)?.code == .unauthenticated }
        let raw = try fixture.raw()
        let reply = try #require(try await raw.handshake(token: "nope"))
        #expect(reply.header.flags == [.response, .error])
        #expect(try reply.decode(Loupe_V1_Status.self).code == .unauthenticated)
        #expect(await raw.readUntilClosed().isEmpty)  // then closed
        // The server keeps serving others.
        let client = try await fixture.client()
        #expect(try await client.predict(sampleDiamond).price > 0)
        await client.close()
    }

    @Test func callsBeforeHelloAreRefusedButHealthIsAnswered() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try fixture.raw()
        raw.send(try ByteBuffer(frameWith: .request(.health, requestID: 5), message: Loupe_V1_HealthRequest()))
        let health = try #require(await raw.readFrame())
        #expect(health.header.requestID == 5 && health.header.flags == .response)
        var predict = Loupe_V1_PredictRequest()
        predict.diamond = Loupe_V1_Diamond(sampleDiamond)
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 6), message: predict))
        let refused = try #require(await raw.readFrame())
        #expect(try refused.decode(Loupe_V1_Status.self).code == .unauthenticated)
        #expect(await raw.readUntilClosed().isEmpty)
    }

    @Test func oversizeFramesBeforeAndAfterTheHandshakeCloseTheConnection() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        // Before: 8 KiB.
        let early = try fixture.raw()
        early.send([0x00, 0x00, 0x40, 0x00] + [UInt8](repeating: 0, count: 16))  // length 16 KiB
        let earlyError = try #require(await early.readFrame())
        #expect(earlyError.header.requestID == 0)
        #expect(try earlyError.decode(Loupe_V1_Status.self).code == .resourceExhausted)
        #expect(await early.readUntilClosed().isEmpty)
        // After: 8 MiB.
        let late = try fixture.raw()
        #expect(try await late.handshake()?.header.flags == .response)
        late.send([0x01, 0x00, 0x00, 0x00] + [UInt8](repeating: 0, count: 16))  // 16 MiB
        #expect(try await late.readFrame()?.decode(Loupe_V1_Status.self).code == .resourceExhausted)
        #expect(await late.readUntilClosed().isEmpty)
        let client = try await fixture.client()
        #expect(try await client.predict(sampleDiamond).price > 0)
        await client.close()
    }

    @Test func garbageAndTricklersAreCutOff() async throws {
        var limits = FrameLimits.standard
        limits.frameDeadlineBeforeHandshake = .milliseconds(300)
        let fixture = try await ServerFixture.start { $0.frameLimits = limits }
        defer { Task { await fixture.stop() } }
        let garbage = try fixture.raw()
        garbage.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(try await garbage.readFrame()?.decode(Loupe_V1_Status.self).code != nil)
        #expect(await garbage.readUntilClosed().isEmpty)

        let trickler = try fixture.raw()
        trickler.send([0x00, 0x00, 0x00, 0x20, 0x01])  // a frame starts, then nothing
        let cut = try #require(await trickler.readFrame())
        #expect(try cut.decode(Loupe_V1_Status.self).code == .deadlineExceeded)
        #expect(await trickler.readUntilClosed().isEmpty)
        for _ in 0..<200 where fixture.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(fixture.server.openConnections == 0)
    }

    @Test func aClientThatVanishesMidBatchDoesNotHurtOthers() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        do {
            let raw = try fixture.raw()
            _ = try await raw.handshake()
            var request = Loupe_V1_BatchPredictRequest()
            request.rows = Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 5000))
            let frame = try ByteBuffer(frameWith: .request(.batchPredict, requestID: 2, rowCount: 5000), message: request)
            raw.send(Array(frame.readableBytesView.prefix(frame.readableBytes / 2)))
        }  // closed mid-frame
        do {
            let raw = try fixture.raw()
            _ = try await raw.handshake()
            var request = Loupe_V1_BatchPredictRequest()
            request.rows = Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 5000))
            raw.send(try ByteBuffer(frameWith: .request(.batchPredict, requestID: 2, rowCount: 5000), message: request))
        }  // closed before the reply
        let client = try await fixture.client()
        #expect(try await client.batchPredict(Loupe_V1_DiamondColumns([sampleDiamond])).prices.count == 1)
        await client.close()
        // No connection is left behind.
        for _ in 0..<200 where fixture.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(fixture.server.openConnections == 0)
    }

    @Test func permissionsFollowScopes() async throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-scope-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let limited = ModelServer(
            configuration: ModelServerConfiguration(port: 0, metricsPort: nil), catalog: fixture.catalog,
            authenticator: StaticSecretAuthenticator(
                secret: "p", principal: Principal(name: "partner", scopes: [.predict])))
        try await limited.start()
        let client = try await LoupeClient.connect(.init(port: limited.port!, token: "p"))
        #expect(try await client.predict(sampleDiamond).price > 0)
        await #expect { try await client.retrain(Loupe_V1_RetrainRequest()) } throws: {
            ($0 as? ProtocolError)?.code == .permissionDenied
        }
        await #expect { try await client.listModels() } throws: { ($0 as? ProtocolError)?.code == .permissionDenied }
        await client.close()
        await limited.shutdown()
    }

    @Test func pipelinedCallsAreAllAnsweredWithTheirIDs() async throws {
        let fixture = try await ServerFixture.start { $0.maxInFlightPerConnection = 4; $0.inlineBatchRows = 0 }
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        // More calls at once than the in-flight bound: the server pushes back, nothing is lost.
        let prices = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let reply = try await client.batchPredict(Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 1 + i % 5)))
                    return reply.prices.count
                }
            }
            var counts: [Int] = []
            for try await n in group { counts.append(n) }
            return counts
        }
        #expect(prices.count == 64)
        let expected = (0..<64).map { 1 + $0 % 5 }.reduce(0, +)
        #expect(prices.reduce(0, +) == expected)
        await client.close()
    }

    @Test func metricsEndpointCountsCalls() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        _ = try await client.predict(sampleDiamond)
        await client.close()
        let text = fixture.server.metrics.exposition()
        #expect(text.contains("loupe_calls_total{method=\"Predict\",status=\"OK\"} 1"))
        #expect(text.contains("loupe_model_version 1"))
        let port = try #require(fixture.server.metricsPort)
        let http = try RawConnection(port: port, timeout: 60)
        http.send(Array("GET /healthz HTTP/1.0\r\n\r\n".utf8))
        let answer = String(decoding: await http.readUntilClosed(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.0 200"))
        #expect(answer.contains("\"ready\":true"))
        let metricsHTTP = try RawConnection(port: port, timeout: 60)
        metricsHTTP.send(Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))
        #expect(String(decoding: await metricsHTTP.readUntilClosed(), as: UTF8.self).contains("loupe_rows_scored_total"))
        // The report pages the process handed the server: production's, and 404 for a version
        // that does not exist.
        let report = try RawConnection(port: port)
        report.send(Array("GET /report HTTP/1.0\r\n\r\n".utf8))
        let page = String(decoding: await report.readUntilClosed(), as: UTF8.self)
        #expect(page.hasPrefix("HTTP/1.0 200") && page.contains("<html"))
        let missing = try RawConnection(port: port)
        missing.send(Array("GET /report/99 HTTP/1.0\r\n\r\n".utf8))
        #expect(String(decoding: await missing.readUntilClosed(), as: UTF8.self).hasPrefix("HTTP/1.0 404"))
    }
}

@Suite(.serialized) struct HotSwapTests {
    @Test func swapsUnderLoadFailNoCall() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        for _ in 0..<3 { try fixture.addModel(promote: false, rounds: 5) }  // versions 2, 3, 4
        let client = try await fixture.client()
        let state = LoadState()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !state.stop.load(ordering: .relaxed) {
                            do {
                                let reply = try await client.predict(sampleDiamond)
                                state.versions.withLock { _ = $0.insert(reply.modelVersion) }
                            } catch {
                                state.failures.add(1, ordering: .relaxed)
                            }
                        }
                    }
                }
            }
        }
        // Promote 2, 3, 4, then roll back twice: five swaps under load (seen by the poller).
        for version in [2, 3, 4] {
            _ = try fixture.catalog.store.promote(name: "diamonds", version: version)
            try await waitFor { fixture.server.registry.model?.version == version }
        }
        _ = try fixture.catalog.store.rollback(name: "diamonds")
        try await waitFor { fixture.server.registry.model?.version == 3 }
        state.stop.store(true, ordering: .relaxed)
        await load.value
        #expect(state.failures.load(ordering: .relaxed) == 0)
        let seen = state.versions.withLock { $0 }
        #expect(seen.isSubset(of: [1, 2, 3, 4]))
        #expect(seen.count >= 2)
        await client.close()
    }

    @Test func gracefulShutdownAnswersCallsInFlight() async throws {
        let fixture = try await ServerFixture.start { $0.inlineBatchRows = 0 }
        let client = try await fixture.client()
        let big = Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 100_000))
        let calls = (0..<6).map { _ in Task { try await client.batchPredict(big) } }
        // Shut down while calls are being scored.
        let exposition = { fixture.server.metrics.exposition() }
        for _ in 0..<2000 where !exposition().contains("loupe_calls_in_flight 1") && !exposition().contains("loupe_calls_in_flight 2") {
            try await Task.sleep(for: .milliseconds(1))
        }
        await fixture.stop()
        var answered = 0
        for call in calls {
            do {
                let reply = try await call.value
                #expect(reply.prices.count == 100_000)
                answered += 1
            } catch {
                // Only calls the server never started may fail, and only as UNAVAILABLE.
                #expect((error as? ProtocolError)?.code == .unavailable)
            }
        }
        // Every call the server started was answered: none is left in flight, and the
        // server's count of answered calls is the client's.
        let text = exposition()
        #expect(text.contains("loupe_calls_in_flight 0"))
        #expect(text.contains("loupe_calls_total{method=\"BatchPredict\",status=\"OK\"} \(answered)"), "\(answered)")
        #expect(answered >= 1)
        await #expect { try await client.predict(sampleDiamond) } throws: { ($0 as? ProtocolError)?.code == .unavailable }
    }

    func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<400 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }
}

final class LoadState: Sendable {
    let failures = Atomic<Int>(0)
    let versions = Mutex<Set<UInt32>>([])
    let stop = Atomic<Bool>(false)
}
