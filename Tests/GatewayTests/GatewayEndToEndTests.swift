import Catalog
import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import ModelServer
import NIOCore
import NIOSSL
import Testing
import TokenStore
import TreeTraining
import RetrainService

/// The gateway in front of a real model server that trusts it through the internal secret.
@Suite(.serialized) struct GatewayEndToEndTests {
    static func csv(rows: Int) -> [UInt8] { Array(SyntheticDiamonds.csv(rows: rows).utf8) }

    @Test(arguments: [false, true]) func partnersReachARealServerAsThemselves(inProcess: Bool) async throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let catalog = try Catalog.open(at: url.path)
        try catalog.ingest(csv: Self.csv(rows: 600), dataset: "diamonds", source: "test")
        let config = TrainingConfiguration(
            rounds: 20, learningRate: 0.3, numLeaves: 7, minDataInLeaf: 5, earlyStoppingRounds: 0,
            calibrationFraction: 0.2, threads: 1)
        let dataset = try catalog.latestDataset()
        let manifest = try catalog.register(
            try Trainer(configuration: config).train(try catalog.table(of: dataset)), dataset: dataset.reference)
        _ = try catalog.store.promote(name: manifest.name, version: manifest.version)
        let server = ModelServer(
            configuration: ModelServerConfiguration(port: 0, metricsPort: nil), catalog: catalog,
            authenticator: GatewayTrustingAuthenticator(internalSecret: GatewayFixture.internalSecret),
            jobs: RetrainService(catalog: catalog))
        try await server.start()
        defer { Task { await server.shutdown() } }

        let fixture = try await GatewayFixture.start(inProcess: inProcess ? InProcessServer(server: server) : nil) {
            $0.backends = inProcess ? [] : [BackendAddress(host: "127.0.0.1", port: server.port!)]
        }
        defer { Task { await fixture.stop() } }
        let partner = try await fixture.token("acme", scopes: ["predict"], limits: .unlimited)
        let ops = try await fixture.token("ops", scopes: ["admin"], limits: .unlimited)

        let client = try await fixture.client(partner)
        let reply = try await client.quickPredict()
        #expect(reply.price > 0 && reply.modelVersion == 1)
        let batch = try await client.batchPredict(DiamondFixture.columns(300))
        #expect(batch.prices.count == 300 && batch.prices[0] == reply.price)
        await #expect { try await client.retrain(Loupe_V1_RetrainRequest()) } throws: { code($0) == .permissionDenied }
        await client.close()

        // The admin's Retrain reaches the server as "ops": the new version's note says so.
        let admin = try await fixture.client(ops)
        var request = Loupe_V1_RetrainRequest()
        request.reuse = Loupe_V1_ReuseParameters()
        let job = try await admin.retrain(request)
        var state = try await admin.job(job.jobID)
        for _ in 0..<600 where state.stage != .succeeded && state.stage != .failed {
            try await Task.sleep(for: .milliseconds(50))
            state = try await admin.job(job.jobID)
        }
        #expect(state.stage == .succeeded, "\(state.message)")
        #expect(try catalog.store.latestModel(name: "diamonds")?.note == "retrain by ops")
        await admin.close()
    }

    @Test func theServerTrustsActingForOnlyWithTheInternalSecret() async throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-trust-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let catalog = try Catalog.open(at: url.path)
        let server = ModelServer(
            configuration: ModelServerConfiguration(port: 0, metricsPort: nil), catalog: catalog,
            authenticator: GatewayTrustingAuthenticator(internalSecret: "inside"))
        try await server.start()
        defer { Task { await server.shutdown() } }
        func hello(_ token: String, actingFor: (String, [String])?) async throws -> Frame? {
            let raw = try RawConnection(port: server.port!)
            var hello = Loupe_V1_Hello()
            hello.protocolVersion = 1
            hello.token = token
            if let (name, scopes) = actingFor {
                hello.actingFor.principal = name
                hello.actingFor.scopes = scopes
            }
            raw.send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
            let welcome = await raw.readFrame()
            guard welcome?.header.flags == .response else { return welcome }
            raw.send(try ByteBuffer(frameWith: .request(.retrain, requestID: 2), message: Loupe_V1_RetrainRequest()))
            return await raw.readFrame()
        }
        #expect(RawConnection.status(try await hello("outside", actingFor: ("ops", ["admin"]))) == .unauthenticated)
        #expect(RawConnection.status(try await hello("", actingFor: ("ops", ["admin"]))) == .unauthenticated)
        // With the secret, the partner's scopes apply at the server too.
        #expect(RawConnection.status(try await hello("inside", actingFor: ("acme", ["predict"]))) == .permissionDenied)
        // A plain static-secret server refuses acting_for altogether.
        let plain = ModelServer(
            configuration: ModelServerConfiguration(port: 0, metricsPort: nil), catalog: catalog,
            authenticator: StaticSecretAuthenticator(secret: "inside"))
        try await plain.start()
        defer { Task { await plain.shutdown() } }
        let raw = try RawConnection(port: plain.port!)
        #expect(RawConnection.status(try await raw.handshake(token: "inside")) == nil)
        let sneaky = try RawConnection(port: plain.port!)
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = "inside"
        hello.actingFor.principal = "x"
        sneaky.send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
        #expect(RawConnection.status(await sneaky.readFrame()) == .unauthenticated)
    }
}

/// A model server in the test's process as the gateway's in-process backend (as `loupe serve` does).
struct InProcessServer: InProcessBackend {
    let server: ModelServer
    func isReady() -> Bool { server.isReady }
    func answer(_ frame: Frame, actingFor: Loupe_V1_ActingFor, on eventLoop: any EventLoop) -> EventLoopFuture<Frame> {
        server.answerInProcess(
            frame, principal: Principal(name: actingFor.principal, scopes: Scope.parse(actingFor.scopes)), on: eventLoop)
    }
}

/// TLS termination with certificates made by `openssl` in the test.
@Suite(.serialized) struct GatewayTLSTests {
    struct Certificates {
        let dir: URL
        var ca: String { dir.appendingPathComponent("ca.pem").path }
        var serverCert: String { dir.appendingPathComponent("server.pem").path }
        var serverKey: String { dir.appendingPathComponent("server.key").path }
        var clientCert: String { dir.appendingPathComponent("client.pem").path }
        var clientKey: String { dir.appendingPathComponent("client.key").path }
    }

    static func makeCertificates() throws -> Certificates {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(dir.path)'
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
              -days 2 -subj '/CN=Loupe Test CA' 2>/dev/null
            for who in server client; do
              openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $who.key -out $who.csr \
                -subj "/CN=$who" 2>/dev/null
            done
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
              -extfile server.ext 2>/dev/null
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw GatewayError("openssl failed to make test certificates") }
        return Certificates(dir: dir)
    }

    func tlsClient(_ fixture: GatewayFixture, _ token: IssuedToken, _ certs: Certificates, withClientCert: Bool = false)
        async throws -> LoupeClient
    {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certs.ca)
        if withClientCert {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certs.clientCert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: certs.clientKey, format: .pem))
        }
        return try await LoupeClient.connect(.init(
            host: "127.0.0.1", port: fixture.port, token: token.token.rawValue, callTimeout: .seconds(10), tls: tls,
            tlsServerName: "localhost"))
    }

    @Test func tlsTerminatesAtTheGateway() async throws {
        let certs = try Self.makeCertificates()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let fixture = try await GatewayFixture.start {
            $0.tls = GatewayTLSConfiguration(certificatePath: certs.serverCert, privateKeyPath: certs.serverKey)
        }
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token()
        let client = try await tlsClient(fixture, token, certs)
        #expect(try await client.quickPredict().price == 1000)
        await client.close()
        // Plaintext on the TLS port gets nowhere.
        await #expect(throws: (any Error).self) { try await fixture.client(token, timeout: .seconds(3)) }
        // A client that does not trust the CA refuses the server.
        await #expect(throws: (any Error).self) {
            try await LoupeClient.connect(.init(
                port: fixture.port, token: token.token.rawValue, tls: .makeClientConfiguration(), tlsServerName: "localhost"))
        }
        #expect(fixture.backend.stats.totalCalls == 1)
    }

    @Test func clientCertificatesCanBeRequired() async throws {
        let certs = try Self.makeCertificates()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let fixture = try await GatewayFixture.start {
            $0.tls = GatewayTLSConfiguration(
                certificatePath: certs.serverCert, privateKeyPath: certs.serverKey, clientCAPath: certs.ca)
        }
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token()
        await #expect(throws: (any Error).self) { try await tlsClient(fixture, token, certs) }
        let client = try await tlsClient(fixture, token, certs, withClientCert: true)
        #expect(try await client.quickPredict().price == 1000)
        await client.close()
        #expect(fixture.backend.stats.totalCalls == 1)
    }

    @Test func plaintextOffLoopbackIsRefusedAtStart() async throws {
        let store = try SQLiteTokenStore(
            path: TestFiles.unique("loupe-pt", suffix: ".sqlite").path)
        let gateway = Gateway(
            configuration: GatewayConfiguration(
                host: "0.0.0.0", port: 0, backends: [BackendAddress(host: "127.0.0.1", port: 1)], internalSecret: "s"),
            tokens: store)
        await #expect(throws: GatewayError.self) { try await gateway.start() }
        await store.close()
    }
}
