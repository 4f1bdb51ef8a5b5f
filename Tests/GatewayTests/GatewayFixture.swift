import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import NIOCore
import Synchronization
import TokenStore

/// Every raw token the gateway tests created, and every log file they wrote: the last test
/// greps the logs and databases for the tokens.
let createdTokens = Mutex<[String]>([])
let writtenFiles = Mutex<[String]>([])

/// A gateway on a free port in front of counting fake backends, over a token store of its
/// own, with its log going to a file.
struct GatewayFixture {
    static let internalSecret = "internal-secret-for-tests"
    let directory: URL
    let tokens: any TokenStore
    let backends: [FakeBackend]
    let gateway: Gateway
    let log: URL

    static func start(
        backends count: Int = 1, tokens: (any TokenStore)? = nil, inProcess: (any InProcessBackend)? = nil,
        clock: GatewayClock = .system, configure: (inout GatewayConfiguration) -> Void = { _ in }
    ) async throws -> GatewayFixture {
        let directory = TestFiles.unique("loupe-gateway")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try tokens ?? SQLiteTokenStore(path: directory.appendingPathComponent("tokens.sqlite").path)
        var backends: [FakeBackend] = []
        for _ in 0..<count {
            let backend = FakeBackend(secret: internalSecret)
            try await backend.start()
            backends.append(backend)
        }
        // Deadlines generous for a loaded 2-core machine (tests wait on states, not times); the
        // tests of the deadlines themselves set their own. The token cache's staleness too: in the
        // full suite, training tests beside these can hold both cooperative threads for seconds,
        // the refresh loop waits, and a 10 s limit turned a slow refresh into UNAVAILABLE.
        var configuration = GatewayConfiguration(
            port: 0, backends: backends.map { BackendAddress(host: "127.0.0.1", port: $0.port!) },
            internalSecret: internalSecret, handshakeTimeout: .seconds(10), healthCheckInterval: .milliseconds(100),
            healthCheckTimeout: .seconds(5), tokenRefreshInterval: .milliseconds(50),
            tokenStaleAfter: .seconds(60), storeTimeout: .seconds(30), shutdownGracePeriod: .seconds(2), metricsPort: 0)
        configure(&configuration)
        let log = directory.appendingPathComponent("gateway.log")
        writtenFiles.withLock { $0.append(log.path) }
        let gateway = Gateway(
            configuration: configuration, tokens: store, inProcess: inProcess, clock: clock,
            logger: LogLines(file: log).logger(label: "loupe.gateway"))
        try await gateway.start()
        return GatewayFixture(directory: directory, tokens: store, backends: backends, gateway: gateway, log: log)
    }

    var port: Int { gateway.port! }
    var backend: FakeBackend { backends[0] }

    /// Creates a token (remembered for the final grep).
    func token(
        _ name: String = "acme", scopes: [String] = ["predict"], limits: RateLimits = RateLimits(),
        expiresAt: Date? = nil
    ) async throws -> IssuedToken {
        let issued = try await tokens.create(TokenSpec(name: name, scopes: scopes, limits: limits, expiresAt: expiresAt))
        createdTokens.withLock { $0.append(issued.token.rawValue) }
        return issued
    }

    func client(_ token: IssuedToken, timeout: TimeAmount? = .seconds(10)) async throws -> LoupeClient {
        try await client(raw: token.token.rawValue, timeout: timeout)
    }

    func client(raw: String, timeout: TimeAmount? = .seconds(10)) async throws -> LoupeClient {
        // A generous handshake wait: see ServerFixture.client.
        try await LoupeClient.connect(.init(
            host: "127.0.0.1", port: port, token: raw, connectTimeout: .seconds(60), callTimeout: timeout))
    }

    func raw() throws -> RawConnection { try RawConnection(port: port) }

    /// Waits (polling, up to `seconds`) until `condition` holds; returns whether it did.
    @discardableResult
    func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    /// Stops everything and removes the fixture's files (unless a test still reads them) but
    /// its log, which `noRawTokenInLogsDatabasesOrTables` greps with every other test's (the
    /// logs go when the test process exits: they are under `TestFiles.directory`).
    func stop(keepingFiles: Bool = false) async {
        await gateway.shutdown()
        for backend in backends { await backend.stop() }
        await tokens.close()
        guard !keepingFiles else { return }
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] where name != log.lastPathComponent {
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
    }
}

let sampleDiamond = DiamondFixture.sample

enum DiamondFixture {
    static let sample = Loupe_V1_Diamond.with {
        $0.carat = 1.01
        $0.cut = .ideal
        $0.color = .g
        $0.clarity = .vs1
        $0.depth = 61.8
        $0.table = 56
        $0.x = 6.43
        $0.y = 6.47
        $0.z = 3.99
    }

    static func columns(_ n: Int) -> Loupe_V1_DiamondColumns {
        var columns = Loupe_V1_DiamondColumns()
        columns.carat = Array(repeating: 1.01, count: n)
        columns.cut = Array(repeating: .ideal, count: n)
        columns.color = Array(repeating: .g, count: n)
        columns.clarity = Array(repeating: .vs1, count: n)
        columns.depth = Array(repeating: 61.8, count: n)
        columns.table = Array(repeating: 56, count: n)
        columns.x = Array(repeating: 6.43, count: n)
        columns.y = Array(repeating: 6.47, count: n)
        columns.z = Array(repeating: 3.99, count: n)
        return columns
    }
}

extension LoupeClient {
    /// Predict with the raw message (the fake backend does not look at it).
    func quickPredict() async throws(ProtocolError) -> Loupe_V1_PredictResponse {
        var request = Loupe_V1_PredictRequest()
        request.diamond = DiamondFixture.sample
        return try await call(.predict, request)
    }
}

func code(_ error: any Error) -> StatusCode? { (error as? ProtocolError)?.code }

/// A counter tasks can share.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// A clock the test moves by hand (seconds), for rate limits that must not depend on the
/// machine's speed.
final class ManualClock: Sendable {
    private let seconds: Mutex<Double>

    init(start: Double = 1000) { seconds = Mutex(start) }

    var now: Double { seconds.withLock { $0 } }
    func advance(by delta: Double) { seconds.withLock { $0 += delta } }
    var gatewayClock: GatewayClock { .simulated { self.now } }
}

/// A flag tasks can share.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
