import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import NIOCore
import Testing

/// The gateway in the corners an independent client found: one address cannot lock partners
/// out, a health probe is answered even when the gateway is full, a half-closed connection
/// gets its replies, the COMPRESSED flag and reused request ids get the documented answers,
/// its own Health is true to its fields, a cut-off frame is logged as CANCELLED.
@Suite struct GatewayConformanceTests {
    static func predictFrame(id: UInt32) throws -> ByteBuffer {
        var request = Loupe_V1_PredictRequest()
        request.diamond = sampleDiamond
        return try ByteBuffer(frameWith: .request(.predict, requestID: id), message: request)
    }

    static func healthFrame(id: UInt32 = 1) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(FrameHeader.size))
        bytes.writeFrameHeader(.request(.health, requestID: id))
        return bytes
    }

    static func answered(_ frame: Frame?) -> Bool { frame.map { !$0.header.flags.contains(.error) } ?? false }

    /// A raw connection that has shaken hands with a new partner token.
    static func partner(_ fixture: GatewayFixture) async throws -> RawConnection {
        let token = try await fixture.token()
        let raw = try fixture.raw()
        #expect(answered(try await raw.handshake(token: token.token.rawValue)))
        return raw
    }

    @Test func oneAddressCannotLockPartnersOutAndHealthProbesAreAnswered() async throws {
        let fixture = try await GatewayFixture.start {
            $0.maxUnauthenticatedConnections = 6
            $0.maxUnauthenticatedConnectionsPerAddress = 4
            $0.maxConnectionsPerAddress = 5
            // Every socket below stays as it is while the test looks, however slow the machine.
            $0.refusalGrace = .seconds(120)
            $0.handshakeTimeout = .seconds(120)
        }
        func raw(from source: String? = nil) throws -> RawConnection {
            try RawConnection(port: fixture.port, timeout: 60, source: source)
        }
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token()
        // An attacker's idle sockets from 127.0.0.1: four are admitted, the rest refused (not
        // counted), so the gateway's six handshake slots are not all taken (without the
        // per-address cap the attacker held all six and the partner below was refused).
        let idle = try (0..<10).map { _ in try raw() }
        #expect(await fixture.eventually(60) { fixture.gateway.connectionCount == 4 })
        // A partner from another address gets in and is served.
        let partner = try raw(from: "127.0.0.2")
        #expect(Self.answered(try await partner.handshake(token: token.token.rawValue)))
        partner.send(try Self.predictFrame(id: 2))
        #expect(Self.answered(await partner.readFrame()))
        // From the attacker's address, over its cap: a Health probe is answered…
        let probe = try raw()
        probe.send(Self.healthFrame())
        let health = try #require(await probe.readFrame())
        let probed = try health.decode(Loupe_V1_HealthResponse.self)
        #expect(Self.answered(health) && probed.live)
        // …and a handshake gets RESOURCE_EXHAUSTED, naming the address's cap.
        let refused = try raw()
        let refusal = try #require(try await refused.handshake(token: token.token.rawValue))
        #expect(RawConnection.status(refusal) == .resourceExhausted)
        let why = try refusal.decode(Loupe_V1_Status.self)
        #expect(why.message.contains("127.0.0.1"))
        #expect(idle.count == 10)

        // Open connections per address are capped too (five from 127.0.0.2: the partner and four).
        var more: [RawConnection] = []
        for _ in 0..<4 {
            let connection = try raw(from: "127.0.0.2")
            #expect(Self.answered(try await connection.handshake(token: token.token.rawValue)))
            more.append(connection)
        }
        let sixth = try raw(from: "127.0.0.2")
        #expect(RawConnection.status(try await sixth.handshake(token: token.token.rawValue)) == .resourceExhausted)
        #expect(more.count == 4)
    }

    @Test func aRefusedConnectionThatSaysNothingIsToldWhyWhenItsGraceEnds() async throws {
        let fixture = try await GatewayFixture.start {
            $0.maxUnauthenticatedConnectionsPerAddress = 1
            $0.refusalGrace = .milliseconds(200)
            $0.handshakeTimeout = .seconds(120)  // the first socket keeps its slot however slow the machine
        }
        defer { Task { await fixture.stop() } }
        let first = try fixture.raw()
        #expect(await fixture.eventually(60) { fixture.gateway.connectionCount == 1 })
        let second = try fixture.raw()
        #expect(RawConnection.status(await second.readFrame()) == .resourceExhausted)
        #expect(await second.readUntilClosed().isEmpty)
        _ = first
    }

    @Test func aHalfClosedConnectionGetsTheRepliesToItsCalls() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try await Self.partner(fixture)
        fixture.backend.hold(true)
        raw.send(try Self.predictFrame(id: 2))
        raw.finishSending()
        #expect(await fixture.eventually { fixture.backend.heldCount == 1 })
        fixture.backend.hold(false)
        let reply = await raw.readFrame()
        #expect(reply?.header.requestID == 2 && Self.answered(reply))
        #expect(await raw.readUntilClosed().isEmpty)
        #expect(await fixture.eventually { fixture.gateway.connectionCount == 0 })
    }

    @Test func theCompressedFlagIsAnsweredUnimplementedAndNotForwarded() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try await Self.partner(fixture)
        var compressed = try Self.predictFrame(id: 3)
        compressed.setInteger(UInt8(0x09), at: 5)  // REQUEST | COMPRESSED
        raw.send(compressed)
        let reply = await raw.readFrame()
        #expect(RawConnection.status(reply) == .unimplemented && reply?.header.requestID == 3)
        raw.send(try Self.predictFrame(id: 4))
        #expect(Self.answered(await raw.readFrame()))
        #expect(fixture.backend.stats.calls[Method.predict.rawValue] == 1)
    }

    @Test func aRequestIDReusedInFlightClosesAfterTheCallsInFlight() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try await Self.partner(fixture)
        fixture.backend.hold(true)
        raw.send(try Self.predictFrame(id: 5))
        #expect(await fixture.eventually { fixture.backend.heldCount == 1 })
        raw.send(try Self.predictFrame(id: 5))
        let error = try #require(await raw.readFrame())
        #expect(error.header.methodID == Method.noneID && RawConnection.status(error) == .invalidArgument)
        fixture.backend.hold(false)
        let answer = await raw.readFrame()
        #expect(answer?.header.requestID == 5 && Self.answered(answer))
        #expect(await raw.readUntilClosed().isEmpty)
        #expect(fixture.backend.stats.calls[Method.predict.rawValue] == 1)
    }

    @Test func theGatewaysOwnHealthIsTrueToItsFields() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        func health() async throws -> Loupe_V1_HealthResponse {
            let raw = try fixture.raw()
            raw.send(Self.healthFrame())
            return try #require(await raw.readFrame()).decode(Loupe_V1_HealthResponse.self)
        }
        #expect(await fixture.eventually { (try? await health().ready) == true })
        let ready = try await health()
        #expect(ready.modelLoaded && ready.storeReachable && ready.live)
        fixture.backend.setReady(false)
        #expect(await fixture.eventually { (try? await health().ready) == false })
        let unready = try await health()
        #expect(unready.ready == (unready.modelLoaded && unready.storeReachable))
        #expect(!unready.modelLoaded && unready.live)
    }

    @Test func aFrameCutOffByTheClientIsLoggedAsCancelled() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token()
        do {
            let raw = try fixture.raw()
            #expect(Self.answered(try await raw.handshake(token: token.token.rawValue)))
            let frame = try Self.predictFrame(id: 2)
            raw.send(Array(frame.readableBytesView.prefix(frame.readableBytes - 3)))
        }  // closed three bytes short
        let logged = await fixture.eventually {
            ((try? String(contentsOf: fixture.log, encoding: .utf8)) ?? "").contains("CANCELLED")
        }
        #expect(logged)
    }
}
