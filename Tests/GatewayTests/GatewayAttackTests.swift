import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import NIOCore
import Synchronization
import Testing
import TokenStore

/// The attacker suite: every way in without a valid token, against a backend that counts what
/// reaches it. Each attempt gets the right status and its connection is closed (except the
/// wrong scope, a call error), and not one call frame — not one partner handshake — reaches
/// the backend.
@Suite(.serialized) struct GatewayAttackTests {
    /// Sends a Hello with `token` on a raw socket; returns the status and whether the gateway
    /// then closed the connection.
    func attempt(_ fixture: GatewayFixture, token: String) async throws -> (StatusCode?, closed: Bool) {
        let raw = try fixture.raw()
        let reply = try await raw.handshake(token: token)
        return (RawConnection.status(reply), await raw.readUntilClosed().isEmpty)
    }

    func expectNothingReached(_ backend: FakeBackend, _ comment: Comment? = nil) {
        let stats = backend.stats
        #expect(stats.totalCalls == 0, comment)
        #expect(stats.actingFor.isEmpty, comment)
        #expect(stats.unauthenticatedFrames == 0, comment)
    }

    @Test func badTokensAreRefusedAndNothingReachesTheBackend() async throws {
        let counting = CountingStore(try SQLiteTokenStore(
            path: TestFiles.unique("loupe-count", suffix: ".sqlite").path))
        let fixture = try await GatewayFixture.start(tokens: counting)
        defer { Task { await fixture.stop() } }
        let good = try await fixture.token("acme")
        let expired = try await fixture.token("old", expiresAt: Date().addingTimeInterval(-1))
        let revoked = try await fixture.token("gone")
        _ = try await fixture.tokens.revoke(id: revoked.record.id, at: Date())
        await fixture.gateway.refreshTokens()

        var typo = Array(good.token.rawValue)
        typo[30] = typo[30] == "a" ? "b" : "a"
        let unknown = AccessToken.generate()
        let wrongSecret = AccessToken(id: good.record.id, secret: AccessToken.generate().secret)
        let cases: [(String, String, StatusCode)] = [
            ("no token", "", .unauthenticated),
            ("malformed", "let-me-in", .unauthenticated),
            ("bad checksum", String(typo), .unauthenticated),
            ("unknown", unknown.rawValue, .unauthenticated),
            ("wrong secret for a real id", wrongSecret.rawValue, .unauthenticated),
            ("expired", expired.token.rawValue, .unauthenticated),
            ("revoked", revoked.token.rawValue, .unauthenticated),
        ]
        for (name, token, expected) in cases {
            let lookupsBefore = counting.lookups
            let (status, closed) = try await attempt(fixture, token: token)
            #expect(status == expected, "\(name)")
            #expect(closed, "\(name): the connection must close")
            if name == "no token" || name == "malformed" || name == "bad checksum" {
                #expect(counting.lookups == lookupsBefore, "\(name): refused before any store lookup")
            }
        }
        await #expect { try await fixture.client(raw: unknown.rawValue) } throws: { code($0) == .unauthenticated }
        expectNothingReached(fixture.backend)

        // The refusals are audited by token id, never with a secret.
        await fixture.gateway.refreshTokens()
        let audit = try await fixture.tokens.auditEvents(limit: 100)
        let events = Set(audit.map(\.event))
        for event in ["missing_token", "malformed_token", "bad_checksum", "unknown_token", "bad_secret", "expired", "revoked"] {
            #expect(events.contains(event), "\(event) audited")
        }
        #expect(audit.contains { $0.event == "bad_secret" && $0.tokenID == good.record.id && $0.principal == "acme" })
        let metrics = fixture.gateway.metrics.exposition()
        #expect(metrics.contains("loupe_gateway_rejections_total{reason=\"revoked\",principal=\"gone\"} 1"))

        // And the real token still works.
        let client = try await fixture.client(good)
        #expect(try await client.quickPredict().modelName == "acme")
        await client.close()
        #expect(fixture.backend.stats.totalCalls == 1)
    }

    @Test func aWrongScopeIsDeniedPerCallAndNeverForwarded() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let partner = try await fixture.token("acme", scopes: ["predict"])
        let client = try await fixture.client(partner)
        #expect(client.welcome.principal == "acme" && client.welcome.scopes == ["predict"])
        await #expect { try await client.retrain(Loupe_V1_RetrainRequest()) } throws: { code($0) == .permissionDenied }
        await #expect { try await client.listModels() } throws: { code($0) == .permissionDenied }
        // The connection stays open for what the token may do.
        #expect(try await client.quickPredict().price == 1000)
        await client.close()
        let stats = fixture.backend.stats
        #expect(stats.calls[Method.retrain.rawValue] == nil && stats.calls[Method.listModels.rawValue] == nil)
        #expect(stats.calls[Method.predict.rawValue] == 1)

        let admin = try await fixture.token("ops", scopes: ["admin"])
        let adminClient = try await fixture.client(admin)
        _ = try await adminClient.retrain(Loupe_V1_RetrainRequest())
        await adminClient.close()
        #expect(fixture.backend.stats.calls[Method.retrain.rawValue] == 1)
        #expect(fixture.backend.stats.actingFor.contains("ops"))
    }

    @Test func framesBeforeTheHandshakeAreRefusedAndClosed() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        // Health is answered by the gateway itself.
        let probe = try fixture.raw()
        probe.send(try ByteBuffer(frameWith: .request(.health, requestID: 5), message: Loupe_V1_HealthRequest()))
        let health = try #require(await probe.readFrame())
        #expect(health.header.requestID == 5 && health.header.flags == .response)
        #expect(try health.decode(Loupe_V1_HealthResponse.self).ready)
        let healthFrames = fixture.backend.stats.healthFrames
        // A call before Hello: UNAUTHENTICATED, closed.
        var predict = Loupe_V1_PredictRequest()
        predict.diamond = sampleDiamond
        probe.send(try ByteBuffer(frameWith: .request(.predict, requestID: 6), message: predict))
        let refused = try #require(await probe.readFrame())
        #expect(RawConnection.status(refused) == .unauthenticated)
        #expect(refused.header.requestID == 6)
        #expect(await probe.readUntilClosed().isEmpty)
        // Several calls pipelined in front of a Hello: the first is refused, the connection closed.
        let pipelined = try fixture.raw()
        var bytes = ByteBuffer()
        for id in 1...5 { bytes.writeImmutableBuffer(try ByteBuffer(frameWith: .request(.batchPredict, requestID: UInt32(id), rowCount: 1), message: Loupe_V1_BatchPredictRequest())) }
        pipelined.send(bytes)
        #expect(RawConnection.status(await pipelined.readFrame()) == .unauthenticated)
        #expect(await pipelined.readUntilClosed().isEmpty)
        // A response frame from a client is a framing error.
        let reply = try fixture.raw()
        var wrongWay = ByteBuffer()
        wrongWay.writeFrame(Frame(header: FrameHeader(flags: .response, methodID: 3, requestID: 1), payload: ByteBuffer()))
        reply.send(wrongWay)
        #expect(RawConnection.status(await reply.readFrame()) == .invalidArgument)
        #expect(await reply.readUntilClosed().isEmpty)
        // A Hello claiming acting_for is refused.
        let sneaky = try fixture.raw()
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = GatewayFixture.internalSecret
        hello.actingFor.principal = "ops"
        hello.actingFor.scopes = ["admin"]
        sneaky.send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
        #expect(RawConnection.status(await sneaky.readFrame()) == .unauthenticated)
        #expect(await sneaky.readUntilClosed().isEmpty)
        expectNothingReached(fixture.backend)
        #expect(fixture.backend.stats.healthFrames >= healthFrames)
    }

    @Test func oversizeFramesBeforeTheHandshakeAreCutOff() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try fixture.raw()
        raw.send([0x00, 0x00, 0x20, 0x00] + [UInt8](repeating: 0, count: 16))  // declares 8 KiB > 4 KiB
        let error = try #require(await raw.readFrame())
        #expect(error.header.requestID == 0)
        #expect(RawConnection.status(error) == .resourceExhausted)
        #expect(await raw.readUntilClosed().isEmpty)
        // A Hello padded past the limit with a long "client name".
        let padded = try fixture.raw()
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = AccessToken.generate().rawValue
        hello.clientName = String(repeating: "x", count: 5000)
        padded.send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
        #expect(RawConnection.status(await padded.readFrame()) == .resourceExhausted)
        #expect(await padded.readUntilClosed().isEmpty)
        expectNothingReached(fixture.backend)
    }

    @Test func aHandshakeThatNeverCompletesIsCutOff() async throws {
        let fixture = try await GatewayFixture.start { $0.handshakeTimeout = .milliseconds(300) }
        defer { Task { await fixture.stop() } }
        let silent = try fixture.raw()  // connects, sends nothing
        let trickler = try fixture.raw()
        trickler.send([0x00, 0x00, 0x00, 0x40, 0x01])  // a frame starts, then nothing
        let healthOnly = try fixture.raw()  // only ever asks for Health
        healthOnly.send(try ByteBuffer(frameWith: .request(.health, requestID: 1), message: Loupe_V1_HealthRequest()))
        #expect(await healthOnly.readFrame()?.header.flags == .response)
        for connection in [silent, trickler, healthOnly] {
            #expect(RawConnection.status(await connection.readFrame()) == .deadlineExceeded)
            #expect(await connection.readUntilClosed().isEmpty)
        }
        expectNothingReached(fixture.backend)
        await fixture.gateway.refreshTokens()
        #expect(try await fixture.tokens.auditEvents(limit: 10).contains { $0.event == "handshake_timeout" })
    }

    @Test func unauthenticatedAndTotalConnectionsAreCapped() async throws {
        let fixture = try await GatewayFixture.start { $0.maxUnauthenticatedConnections = 3; $0.maxConnections = 5 }
        defer { Task { await fixture.stop() } }
        var waiting: [RawConnection]? = try (0..<3).map { _ in try fixture.raw() }
        #expect(await fixture.eventually { fixture.gateway.connectionCount == 3 })
        let extra = try fixture.raw()
        #expect(RawConnection.status(await extra.readFrame()) == .resourceExhausted)
        #expect(await extra.readUntilClosed().isEmpty)
        #expect(waiting?.count == 3)
        waiting = nil
        #expect(await fixture.eventually { fixture.gateway.connectionCount == 0 })
        // Authenticated connections do not count as waiting; the total cap still holds.
        let token = try await fixture.token()
        let idle = try (0..<2).map { _ in try fixture.raw() }
        var clients: [LoupeClient] = []
        for _ in 0..<3 { clients.append(try await fixture.client(token)) }
        // Refused at once (the client may see the refusal, or only the close if it comes first).
        await #expect { try await fixture.client(token) } throws: { [.resourceExhausted, .unavailable].contains(code($0)) }
        #expect(idle.count == 2)
        for client in clients { await client.close() }
        #expect(fixture.backend.stats.totalCalls == 0)
    }

    @Test func theTokenStoreUnavailableFailsClosed() async throws {
        let flaky = FlakyStore(try SQLiteTokenStore(
            path: TestFiles.unique("loupe-flaky", suffix: ".sqlite").path))
        let fixture = try await GatewayFixture.start(tokens: flaky) { $0.tokenStaleAfter = .milliseconds(300) }
        defer { Task { await fixture.stop() } }
        let cached = try await fixture.token("cached")
        let fresh = try await fixture.token("fresh")
        await fixture.gateway.refreshTokens()
        let client = try await fixture.client(cached)
        #expect(try await client.quickPredict().price == 1000)
        let before = fixture.backend.stats.totalCalls

        flaky.available(false)
        // Once the cache is older than tokenStaleAfter: UNAVAILABLE for calls and handshakes alike.
        #expect(await fixture.eventually {
            do { _ = try await client.quickPredict(); return false } catch { return code(error) == .unavailable }
        })
        let stale = fixture.backend.stats.totalCalls
        #expect(stale >= before)
        await #expect { try await client.quickPredict() } throws: { code($0) == .unavailable }
        await #expect { try await fixture.client(fresh) } throws: { code($0) == .unavailable }
        await #expect { try await fixture.client(cached) } throws: { code($0) == .unavailable }
        #expect(fixture.backend.stats.totalCalls == stale)
        #expect(!fixture.backend.stats.actingFor.contains("fresh"))

        flaky.available(true)
        #expect(await fixture.eventually {
            (try? await client.quickPredict()) != nil
        })
        await client.close()
    }
}

/// A store that counts token lookups.
final class CountingStore: TokenStore {
    private let inner: any TokenStore
    private let count = Atomic<Int>(0)
    init(_ inner: any TokenStore) { self.inner = inner }
    var lookups: Int { count.load(ordering: .relaxed) }
    func insert(_ record: TokenRecord) async throws { try await inner.insert(record) }
    func record(id: String) async throws -> TokenRecord? {
        count.add(1, ordering: .relaxed)
        return try await inner.record(id: id)
    }
    func records() async throws -> [TokenRecord] {
        count.add(1, ordering: .relaxed)
        return try await inner.records()
    }
    func revoke(id: String, at date: Date) async throws -> TokenRecord { try await inner.revoke(id: id, at: date) }
    func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord {
        try await inner.rotate(id: id, replacement: replacement, oldExpiresAt: oldExpiresAt)
    }
    func generation() async throws -> Int64 { try await inner.generation() }
    func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64] {
        try await inner.addUsage(rows, day: day)
    }
    func appendAudit(_ events: [AuditEvent]) async throws { try await inner.appendAudit(events) }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await inner.auditEvents(limit: limit) }
    func close() async { await inner.close() }
}

/// A store the gateway cannot reach while `available(false)`; the tests still can (`inner`).
final class FlakyStore: TokenStore {
    private let inner: any TokenStore
    private let up = Atomic<Bool>(true)
    init(_ inner: any TokenStore) { self.inner = inner }
    func available(_ on: Bool) { up.store(on, ordering: .relaxed) }
    private func check() throws {
        if !up.load(ordering: .relaxed) { throw TokenStoreError(.unavailable, "the token store is down (test)") }
    }
    func insert(_ record: TokenRecord) async throws { try await inner.insert(record) }
    func record(id: String) async throws -> TokenRecord? {
        try check()
        return try await inner.record(id: id)
    }
    func records() async throws -> [TokenRecord] {
        try check()
        return try await inner.records()
    }
    func revoke(id: String, at date: Date) async throws -> TokenRecord { try await inner.revoke(id: id, at: date) }
    func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord {
        try await inner.rotate(id: id, replacement: replacement, oldExpiresAt: oldExpiresAt)
    }
    func generation() async throws -> Int64 {
        try check()
        return try await inner.generation()
    }
    func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64] {
        try check()
        return try await inner.addUsage(rows, day: day)
    }
    func appendAudit(_ events: [AuditEvent]) async throws {
        try check()
        try await inner.appendAudit(events)
    }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await inner.auditEvents(limit: limit) }
    func close() async { await inner.close() }
}
