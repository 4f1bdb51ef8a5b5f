import Catalog
import DataCleaning
import DiamondSchema
import Foundation
import Logging
import LoupeClient
import LoupeProtocol
import ModelServer
import NIOCore
import TreeTraining

#if canImport(Glibc)
import Glibc
import Reports
import RetrainService
#endif

/// A store with a small promoted model, and a server on a free port.
struct ServerFixture {
    static let secret = "test-secret"
    let url: URL
    let catalog: Catalog
    let server: ModelServer

    static func csv(rows: Int, seed: Int = 0) -> [UInt8] {
        var lines = ["carat,cut,color,clarity,depth,table,price,x,y,z"]
        let colors = ["D", "E", "F", "G", "H", "I", "J"]
        let cuts = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
        for i in 0..<rows {
            let k = i + seed * 7919
            let carat = 0.3 + Double(k % 170) / 100
            let x = (6.4 * carat.squareRoot() * 100).rounded() / 100
            let z = (x * 0.618 * 100).rounded() / 100
            let depth = ((100 * z / x) * 10).rounded() / 10
            let color = k % 7
            let price = Int(3500 * carat * carat * (1 + 0.05 * Double(6 - color))) + k % 13
            lines.append("\(carat),\(cuts[k % 5]),\(colors[color]),SI1,\(depth),57,\(price),\(x),\(x),\(z)")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

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

    func stop() async {
        await server.shutdown()
        try? FileManager.default.removeItem(at: url)
    }
}

let sampleDiamond = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)

/// A plain TCP socket for sending raw (and broken) bytes.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
        // Generous: under the whole suite's load a handshake's task can wait long for a
        // cooperative thread (a full run once took over 10 s to answer one); a hang still ends.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(_ buffer: ByteBuffer) { send(Array(buffer.readableBytesView)) }

    /// Closes the sending side (a FIN, as `nc -N` sends after its last request); reading goes on.
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Everything the server sends until it closes (or the 60 s timeout).
    func readUntilClosed() -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Reads one whole frame.
    func readFrame() -> Frame? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var buffer = ByteBuffer(bytes: bytes)
            if buffer.readableBytes >= 4, let length = buffer.getInteger(at: 0, as: UInt32.self),
                buffer.readableBytes >= 4 + Int(length)
            {
                buffer.moveReaderIndex(forwardBy: 4)
                guard let header = buffer.readFrameHeader() else { return nil }
                let payload = buffer.readSlice(length: Int(length) - FrameHeader.size)!
                return Frame(header: header, payload: payload)
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Sends a Hello with `token` and returns the reply frame.
    func handshake(token: String = ServerFixture.secret) throws -> Frame? {
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = token
        send(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello))
        return readFrame()
    }
}
