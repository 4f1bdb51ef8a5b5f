import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import LoupeUtilities
import NIOCore
import Synchronization
import Testing
import TokenStore

@Suite(.serialized) struct GatewayForwardingTests {
    @Test func welcomeCarriesPrincipalScopesAndLimits() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token(
            "acme", scopes: ["predict", "models:read"],
            limits: RateLimits(callsPerSecond: 50, callBurst: 80, rowsPerSecond: 5000, rowBurst: 9000, dailyRowQuota: 1_000_000))
        let client = try await fixture.client(token)
        let welcome = client.welcome
        #expect(welcome.principal == "acme")
        #expect(welcome.scopes == ["models:read", "predict"])
        #expect(welcome.limits.callsPerSecond == 50 && welcome.limits.callBurst == 80)
        #expect(welcome.limits.rowsPerSecond == 5000 && welcome.limits.rowBurst == 9000)
        #expect(welcome.limits.dailyRowQuota == 1_000_000)
        #expect(welcome.limits.maxFrameSize == 8 * 1024 * 1024 && welcome.limits.maxInFlight == 64)
        await client.close()
    }

    @Test func callsOfManyConnectionsShareBackendConnectionsWithTheirOwnIDs() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token("acme", limits: .unlimited)
        let other = try await fixture.token("globex", limits: .unlimited)
        var clients: [LoupeClient] = []
        for _ in 0..<4 { clients.append(try await fixture.client(token)) }
        clients.append(try await fixture.client(other))
        // Every client numbers its calls from 2, so the same ids are in flight on all of them.
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (index, client) in clients.enumerated() {
                for i in 0..<40 {
                    group.addTask {
                        let rows = 1 + (index * 40 + i) % 7
                        let reply = try await client.batchPredict(DiamondFixture.columns(rows))
                        #expect(reply.modelName == (index == 4 ? "globex" : "acme"))
                        return (rows, reply.prices.count)
                    }
                }
            }
            var all: [(Int, Int)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0.0 == $0.1 })
        for client in clients { await client.close() }
        let stats = fixture.backend.stats
        #expect(stats.callsByPrincipal["acme"] == 160 && stats.callsByPrincipal["globex"] == 40)
        // Pooled: far fewer backend handshakes than calls (at most loops × connectionsPerToken per token).
        #expect(stats.actingFor.filter { $0 == "acme" }.count <= 4 * ProcessInfo.processInfo.activeProcessorCount)
        let metrics = fixture.gateway.metrics.exposition()
        #expect(metrics.contains("loupe_gateway_calls_total{principal=\"acme\",method=\"BatchPredict\",outcome=\"ok\"} 160"))
        #expect(metrics.contains("loupe_gateway_backend_healthy{backend=\"127.0.0.1:\(fixture.backend.port!)\"} 1"))
    }

    @Test func theDeadlineIsPassedOnAndUnknownMethodsAreForwarded() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token("acme", scopes: ["admin"])
        let raw = try fixture.raw()
        #expect(try await raw.handshake(token: token.token.rawValue)?.header.flags == .response)
        var predict = Loupe_V1_PredictRequest()
        predict.diamond = sampleDiamond
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 77, deadlineMilliseconds: 5000), message: predict))
        let reply = try #require(await raw.readFrame())
        #expect(reply.header.requestID == 77 && reply.header.flags == .response)
        let deadline = fixture.backend.stats.lastDeadline
        #expect(deadline > 0 && deadline <= 5000)
        var unknown = ByteBuffer()
        unknown.writeFrame(Frame(header: FrameHeader(flags: .request, methodID: 99, requestID: 78), payload: ByteBuffer()))
        raw.send(unknown)
        #expect(await raw.readFrame()?.header.requestID == 78)
        #expect(fixture.backend.stats.calls[99] == 1)
        // A second Hello is a call error; the connection stays.
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = token.token.rawValue
        raw.send(try ByteBuffer(frameWith: .request(.hello, requestID: 79), message: hello))
        #expect(RawConnection.status(await raw.readFrame()) == .failedPrecondition)
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 80), message: predict))
        #expect(await raw.readFrame()?.header.requestID == 80)
    }

    @Test func rateLimitsHoldAcrossConnections() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token(
            "acme", limits: RateLimits(callsPerSecond: 0.01, callBurst: 6, rowsPerSecond: 1_000_000, rowBurst: 1_000_000))
        let a = try await fixture.client(token)
        let b = try await fixture.client(token)
        for client in [a, b, a, b, a, b] { _ = try await client.quickPredict() }
        for client in [a, b] {
            await #expect { try await client.quickPredict() } throws: { error in
                guard let e = error as? ProtocolError else { return false }
                return e.code == .resourceExhausted && e.retryAfterMilliseconds > 0 && e.message.contains("calls/s")
            }
        }
        // Health is not rate-limited.
        #expect(try await a.health().live)
        await a.close()
        await b.close()
        #expect(fixture.backend.stats.callsByPrincipal["acme"] == 6)
        await fixture.gateway.refreshTokens()
        let audit = try await fixture.tokens.auditEvents(limit: 10)
        // Coalesced per flush: one row per flush that saw refusals, counts adding up.
        #expect(audit.filter { $0.event == "rate_limited_calls" && $0.principal == "acme" }.map(\.count).reduce(0, +) == 2)
    }

    @Test func batchPredictSpendsItsRows() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token(
            "acme", limits: RateLimits(callsPerSecond: 1000, callBurst: 1000, rowsPerSecond: 0.01, rowBurst: 250))
        let client = try await fixture.client(token)
        #expect(try await client.batchPredict(DiamondFixture.columns(100)).prices.count == 100)
        #expect(try await client.batchPredict(DiamondFixture.columns(100)).prices.count == 100)
        await #expect { try await client.batchPredict(DiamondFixture.columns(100)) } throws: { error in
            guard let e = error as? ProtocolError else { return false }
            return e.code == .resourceExhausted && e.message.contains("rows/s") && e.retryAfterMilliseconds > 0
        }
        #expect(try await client.batchPredict(DiamondFixture.columns(50)).prices.count == 50)
        await #expect { try await client.batchPredict(DiamondFixture.columns(251)) } throws: { error in
            (error as? ProtocolError).map { $0.code == .resourceExhausted && $0.message.contains("split") } ?? false
        }
        await client.close()
        #expect(fixture.backend.stats.calls[Method.batchPredict.rawValue] == 3)
    }

    @Test func acceptedCallsStayWithinBurstPlusRateTimesTime() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let (rate, burst) = (40.0, 10.0)
        let token = try await fixture.token(
            "acme", limits: RateLimits(callsPerSecond: rate, callBurst: burst, rowsPerSecond: 0, rowBurst: 0))
        let clients = [try await fixture.client(token), try await fixture.client(token)]
        let accepted = Counter()
        let refused = Counter()
        let started = ContinuousClock.now
        let end = started + .milliseconds(1500)
        await withTaskGroup(of: Void.self) { group in
            for client in clients {
                for _ in 0..<4 {
                    group.addTask {
                        while ContinuousClock.now < end {
                            do {
                                _ = try await client.quickPredict()
                                accepted.add()
                            } catch {
                                refused.add()
                            }
                        }
                    }
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.seconds
        let n = accepted.count
        // An invariant, not a timing: never more than burst + rate × time (+1 for rounding).
        #expect(Double(n) <= burst + rate * seconds + 1)
        #expect(n >= Int(burst))
        #expect(refused.count > 0)
        #expect(fixture.backend.stats.totalCalls == n)
        for client in clients { await client.close() }
    }

    @Test func theDailyQuotaIsCountedAndStored() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token(
            "acme", limits: RateLimits(callsPerSecond: 0, callBurst: 0, rowsPerSecond: 0, rowBurst: 0, dailyRowQuota: 30))
        let client = try await fixture.client(token)
        _ = try await client.batchPredict(DiamondFixture.columns(25))
        for _ in 0..<5 { _ = try await client.quickPredict() }
        await #expect { try await client.quickPredict() } throws: { error in
            guard let e = error as? ProtocolError else { return false }
            return e.code == .resourceExhausted && e.message.contains("daily quota of 30 rows")
                && e.retryAfterMilliseconds > 0 && e.retryAfterMilliseconds <= 86_400_000
        }
        await client.close()
        await fixture.gateway.refreshTokens()
        let totals = try await fixture.tokens.addUsage([:], day: utcDay(Date()))
        #expect(totals[token.record.id] == 30)
    }
}

@Suite(.serialized) struct GatewayTokenLifecycleTests {
    @Test func revocationUnderLoadStopsTheTokenAndClosesItsConnections() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token("acme", limits: .unlimited)
        let bystander = try await fixture.token("globex", limits: .unlimited)
        let clients = [try await fixture.client(token), try await fixture.client(token)]
        let other = try await fixture.client(bystander)
        let revoked = Flag()
        let failuresBefore = Counter()
        let stop = Flag()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for client in clients {
                    for _ in 0..<3 {
                        group.addTask {
                            while !stop.isSet {
                                do {
                                    _ = try await client.quickPredict()
                                } catch {
                                    if !revoked.isSet { failuresBefore.add() }
                                    if code(error) == .unauthenticated || code(error) == .unavailable { return }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Revoke once the load is through (a fixed 200 ms was not enough on a loaded CI machine:
        // the token was revoked before any call had reached the backend).
        #expect(await fixture.eventually(60) { (fixture.backend.stats.callsByPrincipal["acme"] ?? 0) > 0 })
        revoked.set()
        _ = try await fixture.tokens.revoke(id: token.record.id, at: Date())
        // Within the refresh interval the token is refused: the load ends by itself.
        let ended = await fixture.eventually(5) {
            let calls = fixture.backend.stats.callsByPrincipal["acme"] ?? 0
            try? await Task.sleep(for: .milliseconds(150))
            return calls == (fixture.backend.stats.callsByPrincipal["acme"] ?? 0)
        }
        stop.set()
        await load.value
        #expect(ended)
        #expect(failuresBefore.count == 0)
        #expect(fixture.backend.stats.callsByPrincipal["acme"] ?? 0 > 0)
        await #expect { try await fixture.client(token) } throws: { code($0) == .unauthenticated }
        // Other tokens are untouched.
        #expect(try await other.quickPredict().modelName == "globex")
        await other.close()
    }

    @Test func rotationLetsOldAndNewOverlapThenRetiresTheOld() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let old = try await fixture.token("acme", limits: .unlimited)
        let oldClient = try await fixture.client(old)
        // A grace that a loaded machine cannot use up before the overlap is checked (1.5 s did,
        // at load 16): the test waits it out, so it costs these seconds.
        let rotated = try await fixture.tokens.rotate(id: old.record.id, grace: 6)
        createdTokens.withLock { $0.append(rotated.token.rawValue) }
        await fixture.gateway.refreshTokens()
        let newClient = try await fixture.client(rotated)
        #expect(newClient.welcome.principal == "acme")
        // Both work during the grace period, under load, without a failure on the new one.
        let newFailures = Counter()
        let newCalls = Counter()
        let stop = Flag()
        let load = Task {
            while !stop.isSet {
                do {
                    _ = try await newClient.quickPredict()
                    newCalls.add()
                } catch {
                    newFailures.add()
                }
            }
        }
        #expect(try await oldClient.quickPredict().price == 1000)
        let secondOld = try await fixture.client(old)
        #expect(try await secondOld.quickPredict().price == 1000)
        // After the grace period the old token stops.
        #expect(await fixture.eventually(60) {
            do { _ = try await oldClient.quickPredict(); return false } catch { return code(error) == .unauthenticated }
        })
        await #expect { try await fixture.client(old) } throws: { code($0) == .unauthenticated }
        stop.set()
        await load.value
        #expect(newFailures.count == 0)
        #expect(newCalls.count > 0)
        await newClient.close()
    }
}

@Suite(.serialized) struct GatewayBackendTests {
    @Test func aBackendKilledMidLoadRetriesItsIdempotentCallsElsewhereAndRejoins() async throws {
        let fixture = try await GatewayFixture.start(backends: 2)
        defer { Task { await fixture.stop() } }
        let (a, b) = (fixture.backends[0], fixture.backends[1])
        let token = try await fixture.token("acme", scopes: ["admin"], limits: .unlimited)
        let client = try await fixture.client(token)
        a.hold(true)
        // Rounds of 20 calls: the ones routed to A stay in flight there, B answers the rest. On a
        // loaded machine a slow health probe can take A out for a moment, and then a round all
        // goes to B (seen in CI and locally): another round follows until one is held on A.
        var calls: [Task<Void, any Error>] = []
        for _ in 0..<10 where a.heldCount == 0 {
            #expect(await fixture.eventually { fixture.gateway.backendHealth == [true, true] })
            calls += (0..<20).map { i in
                Task {
                    if i % 4 == 0 {
                        // Retrain starts a job: never sent twice.
                        let _: Loupe_V1_RetrainResponse = try await client.call(.retrain, Loupe_V1_RetrainRequest())
                    } else {
                        _ = try await client.quickPredict()
                    }
                }
            }
            let sent = calls.count
            #expect(await fixture.eventually { a.heldCount + b.stats.totalCalls == sent })
        }
        let stranded = a.heldCount
        let strandedRetrains = a.stats.calls[Method.retrain.rawValue] ?? 0
        #expect(stranded > 0)
        let retrainsOnB = b.stats.calls[Method.retrain.rawValue] ?? 0
        let portA = a.port!
        await a.stop()
        var unavailable = 0
        var answered = 0
        for call in calls {
            do {
                try await call.value
                answered += 1
            } catch {
                #expect(code(error) == .unavailable)
                unavailable += 1
            }
        }
        // The Predicts stranded on A were answered by B; only the Retrains failed.
        #expect(unavailable == strandedRetrains)
        #expect(answered == calls.count - strandedRetrains)
        #expect(b.stats.calls[Method.retrain.rawValue] ?? 0 == retrainsOnB)
        #expect(fixture.gateway.metrics.exposition().contains("loupe_gateway_retries_total{method=\"Predict\"}"))
        // New calls go to B; the client connection survived.
        for _ in 0..<10 { #expect(try await client.quickPredict().price == 1000) }
        #expect(fixture.gateway.backendHealth == [false, true])
        // A comes back on the same port and rejoins once healthy.
        a.hold(false)
        try await a.start(port: portA)
        #expect(await fixture.eventually { fixture.gateway.backendHealth == [true, true] })
        for _ in 0..<20 { _ = try await client.quickPredict() }
        #expect(a.stats.totalCalls > stranded)
        await client.close()
    }

    @Test func noHealthyBackendMeansUnavailable() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token("acme", limits: .unlimited)
        let client = try await fixture.client(token)
        fixture.backend.setReady(false)
        #expect(await fixture.eventually { fixture.gateway.backendHealth == [false] })
        await #expect { try await client.quickPredict() } throws: { error in
            (error as? ProtocolError).map { $0.code == .unavailable && $0.retryAfterMilliseconds > 0 } ?? false
        }
        fixture.backend.setReady(true)
        #expect(await fixture.eventually { fixture.gateway.backendHealth == [true] })
        #expect(try await client.quickPredict().price == 1000)
        await client.close()
    }

    @Test func aBackendWithAnotherSecretGetsNothingAndStaysUnhealthy() async throws {
        let stranger = FakeBackend(secret: "a different secret")
        let port = try await stranger.start()
        let fixture = try await GatewayFixture.start { $0.backends = [BackendAddress(host: "127.0.0.1", port: port)] }
        defer { Task { await fixture.stop(); await stranger.stop() } }
        let token = try await fixture.token()
        let client = try await fixture.client(token)
        await #expect { try await client.quickPredict() } throws: { code($0) == .unavailable }
        #expect(stranger.stats.totalCalls == 0 && stranger.stats.acceptedHellos == 0)
        #expect(fixture.gateway.backendHealth == [false])
        await client.close()
    }
}
