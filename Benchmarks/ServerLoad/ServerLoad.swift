import ArgumentParser
import BundledData
import Catalog
import DataCleaning
import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import LoupeUtilities
import ModelRuntime
import NIOCore
import NIOPosix
import Synchronization

/// `loupe-bench-server`: the load generator for a running model server or gateway (formerly
/// `loupe bench-server`, same options). It lives beside the product, not in the `loupe` binary.
@main
struct BenchServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe-bench-server",
        abstract: "Load-test a running server: Predict or BatchPredict, closed- or open-loop, with latency percentiles.",
        discussion: """
            Closed loop (the default): --connections × --concurrency callers, each sending its \
            next call when the last is answered (pipelined on each connection): the most the \
            server can do. Open loop (--rate N): N calls a second on a fixed schedule whatever \
            the replies do; latency counts from when a call was due, so a stalled server shows \
            (no coordinated omission); with --raw each connection's thread keeps its share of \
            the schedule over a blocking socket, the most precise open loop. Rows come from the bundled data. --in-process scores the \
            same batches without the network, and --echo measures a bare TCP echo of the same \
            frame size: the baselines for the server's overhead.
            """)

    @OptionGroup var target: TargetOptions

    @Option(parsing: .unconditional, help: "Rows per call: 0 calls Predict, N > 0 calls BatchPredict with N rows.")
    var batch: Int = 0

    @Option(parsing: .unconditional, help: "Seconds to run.")
    var duration: Double = 5

    @Option(parsing: .unconditional, help: "Connections.")
    var connections: Int = 1

    @Option(parsing: .unconditional, help: "Calls in flight per connection (closed loop).")
    var concurrency: Int = 1

    @Option(parsing: .unconditional, help: "Open loop: calls per second in total.")
    var rate: Double?

    @Flag(help: "Score the same rows in this process instead (no network): the in-process baseline.")
    var inProcess = false

    @Flag(help: "Measure a bare TCP echo of the same frame size instead: the network baseline.")
    var echo = false

    @Flag(help: "Call through a plain blocking socket (as --echo does) instead of the async client, one call at a time per connection, a thread each: the server's round trip without client overhead. With --rate, each connection keeps its own share of the schedule.")
    var raw = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        guard duration > 0, connections >= 1, concurrency >= 1, batch >= 0 else {
            throw BenchError("--duration, --connections and --concurrency must be positive, --batch >= 0")
        }
        let rows = try sampleRows(max(batch, 1))
        let result: BenchResult
        if inProcess {
            result = try inProcessRun(rows)
        } else if echo {
            result = try await echoRun(rows)
        } else if raw {
            result = try await rawRun(rows)
        } else {
            guard target.server != nil else { throw BenchError("give --server HOST:PORT (or --in-process / --echo)") }
            result = try await networkRun(rows)
        }
        if json {
            print(result.json)
        } else {
            print(result.text)
        }
    }

    // MARK: Workloads

    /// `n` rows spread over the whole bundled data (a prime stride through it), so a batch has
    /// the data's mix of stones: the file is sorted by price, and cheap stones score faster.
    private func sampleRows(_ n: Int) throws -> DiamondTable {
        let all = try BenchError.oneLine("the bundled diamonds data") { try Cleaner.clean(csv: BundledData.diamondsCSV()).clean }
        return all.rows((0..<n).lazy.map { ($0 &* 7919) % all.count })
    }

    private func request(_ rows: DiamondTable) throws -> (Method, Frame) {
        if batch == 0 {
            var r = Loupe_V1_PredictRequest()
            r.diamond = Loupe_V1_Diamond(rows.diamond(at: 0))
            return (.predict, try Frame(header: .request(.predict, requestID: 0), message: r))
        }
        var r = Loupe_V1_BatchPredictRequest()
        r.rows = Loupe_V1_DiamondColumns(featureColumns: rows.columns)
        return (.batchPredict, try Frame(header: .request(.batchPredict, requestID: 0, rowCount: UInt32(rows.count)), message: r))
    }

    private func networkRun(_ rows: DiamondTable) async throws -> BenchResult {
        var clients: [LoupeClient] = []
        for i in 0..<connections {
            clients.append(try await target.connect(clientName: "loupe-bench-\(i)"))
        }
        let diamond = rows.diamond(at: 0)
        let columns = Loupe_V1_DiamondColumns(featureColumns: rows.columns)
        let batch = batch
        let call: @Sendable (LoupeClient) async throws -> Void = { client in
            if batch == 0 {
                _ = try await client.predict(diamond)
            } else {
                _ = try await client.batchPredict(columns)
            }
        }
        let (_, frame) = try request(rows)
        let result = try await drive(label: batch == 0 ? "Predict" : "BatchPredict×\(batch)", frameBytes: frame.length + 4,
                                     clients: clients, call: call)
        for client in clients { await client.close() }
        return result
    }

    /// Runs the load on `clients` and measures it.
    private func drive(
        label: String, frameBytes: Int, clients: [LoupeClient], call: @escaping @Sendable (LoupeClient) async throws -> Void
    ) async throws -> BenchResult {
        let recorder = Recorder()
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = ProcessCPU.seconds
        let end = start + .milliseconds(Int64(duration * 1000))
        if let rate {
            // Open loop: call i is due at start + i / rate; each is sent on time (its own task).
            let interval = Duration.nanoseconds(Int64(1e9 / rate))
            await withTaskGroup(of: Void.self) { group in
                var due = start
                var i = 0
                while due < end {
                    try? await clock.sleep(until: due)
                    let client = clients[i % clients.count]
                    let scheduled = due
                    group.addTask {
                        do {
                            try await call(client)
                            recorder.record(clock.now - scheduled)
                        } catch {
                            recorder.failed()
                        }
                    }
                    i += 1
                    due = start + interval * i
                }
            }
        } else {
            await withTaskGroup(of: Void.self) { group in
                for client in clients {
                    for _ in 0..<concurrency {
                        group.addTask {
                            while clock.now < end {
                                let sent = clock.now
                                do {
                                    try await call(client)
                                    recorder.record(clock.now - sent)
                                } catch {
                                    recorder.failed()
                                }
                            }
                        }
                    }
                }
            }
        }
        return recorder.result(
            label: label, seconds: (clock.now - start).seconds, rowsPerCall: max(batch, 1), frameBytes: frameBytes,
            mode: rate.map { "open loop, \(Int($0)) calls/s" } ?? "closed loop, \(clients.count)×\(concurrency) in flight",
            cpuSeconds: ProcessCPU.seconds - cpuStart)
    }

    private func inProcessRun(_ rows: DiamondTable) throws -> BenchResult {
        let catalog = try target.catalog()
        let manifest = try BenchError.oneLine("model") { try catalog.manifest(for: ModelSpec()) }
        let model = ServingModel(name: manifest.name, version: manifest.version,
                                 ensemble: try catalog.ensemble(of: manifest), trainingData: nil)
        let recorder = Recorder()
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = ProcessCPU.seconds
        let end = start + .milliseconds(Int64(duration * 1000))
        let columns = rows.columns
        let diamond = rows.diamond(at: 0)
        while clock.now < end {
            let t = clock.now
            if batch == 0 {
                _ = model.predict(diamond, level: 0.9)
            } else {
                _ = model.predictBatch(columns: columns, level: 0.9)
            }
            recorder.record(clock.now - t)
        }
        return recorder.result(label: (batch == 0 ? "Predict" : "BatchPredict×\(batch)") + " in process",
                               seconds: (clock.now - start).seconds, rowsPerCall: max(batch, 1), frameBytes: 0,
                               mode: "one thread, no network", cpuSeconds: ProcessCPU.seconds - cpuStart)
    }

    /// A bare TCP echo server on loopback, called with frames of the request's size.
    private func echoRun(_ rows: DiamondTable) async throws -> BenchResult {
        let (_, frame) = try request(rows)
        var bytes = ByteBuffer()
        bytes.writeFrame(frame)
        let size = bytes.readableBytes
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { $0.pipeline.addHandler(EchoHandler()) }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!
        let recorder = Recorder()
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = ProcessCPU.seconds
        let end = start + .milliseconds(Int64(duration * 1000))
        let payload = bytes
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<connections {
                tasks.addTask {
                    let socket = try BlockingSocket(port: port)
                    while clock.now < end {
                        let sent = clock.now
                        try socket.roundTrip(payload, expect: size)
                        recorder.record(clock.now - sent)
                    }
                }
            }
            try await tasks.waitForAll()
        }
        return recorder.result(label: "TCP echo of \(size) bytes", seconds: (clock.now - start).seconds,
                               rowsPerCall: max(batch, 1), frameBytes: size, mode: "closed loop, \(connections) connection(s)",
                               cpuSeconds: ProcessCPU.seconds - cpuStart)
    }

    /// The same calls over blocking sockets: handshake, then one frame out, one frame back.
    private func rawRun(_ rows: DiamondTable) async throws -> BenchResult {
        guard let server = target.server, let port = server.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw BenchError("give --server HOST:PORT")
        }
        let token = try target.resolvedToken()
        let (_, frame) = try request(rows)
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = token
        let helloBytes = try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello)
        let recorder = Recorder()
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = ProcessCPU.seconds
        let end = start + .milliseconds(Int64(duration * 1000))
        let base = frame
        // With --rate, each connection keeps its own schedule (call i due at start + i ×
        // connections / rate) and latency counts from when a call was due, as wrk2 does: a
        // stalled server shows, and no task scheduling sits between the schedule and the socket.
        let interval = rate.map { Duration.nanoseconds(Int64(1e9 * Double(connections) / $0)) }
        let failure = Mutex<(any Error)?>(nil)
        let done = DispatchGroup()
        for connection in 0..<connections {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    let socket = try BlockingSocket(port: port)
                    _ = try socket.call(helloBytes)
                    var id: UInt32 = 2
                    // The frame is written once; each call only gets its own request id (a
                    // BatchPredict frame is megabytes: copying it per call would be the client's
                    // largest cost).
                    var bytes = ByteBuffer()
                    bytes.writeFrame(base)
                    var due = start + (interval ?? .zero) * connection / connections
                    while clock.now < end {
                        if interval != nil {
                            Self.sleep(until: due, clock)
                            if due >= end { break }
                        }
                        var header = base.header
                        header.requestID = id
                        id &+= 1
                        bytes.setFrameHeader(header, at: bytes.readerIndex + FrameHeader.lengthFieldSize)
                        let sent = interval == nil ? clock.now : due
                        if let interval { due += interval }
                        let reply = try socket.call(bytes)
                        guard reply.header.requestID == header.requestID, !reply.header.flags.contains(.error) else {
                            recorder.failed()
                            continue
                        }
                        recorder.record(clock.now - sent)
                    }
                } catch {
                    failure.withLock { $0 = error }
                }
            }.start()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            done.notify(queue: .global()) { continuation.resume() }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return recorder.result(label: (batch == 0 ? "Predict" : "BatchPredict×\(batch)") + " over a blocking socket",
                               seconds: (clock.now - start).seconds, rowsPerCall: max(batch, 1), frameBytes: base.length + 4,
                               mode: rate.map { "open loop, \(Int($0)) calls/s over \(connections) connection(s)" }
                                   ?? "closed loop, \(connections) connection(s)",
                               cpuSeconds: ProcessCPU.seconds - cpuStart)
    }

    /// Blocks the calling thread until `instant` (no-op when it has passed).
    private static func sleep(until instant: ContinuousClock.Instant, _ clock: ContinuousClock) {
        let left = instant - clock.now
        guard left > .zero else { return }
        var request = timespec(tv_sec: Int(left.components.seconds), tv_nsec: Int(left.components.attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

#if canImport(Glibc)
import Glibc
#endif
