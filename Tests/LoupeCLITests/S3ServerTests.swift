import DiamondSchema
import Foundation
import LoupeClient
import LoupeTestKit
import RequestLog
import Testing

@testable import S3Store

/// `loupe server`s on an S3 store (moto, started by scripts/test).
@Suite(.serialized) struct S3ServerTests {
    /// A fresh store in the test bucket with one dataset and model version 1 at production;
    /// nil (skipped, except under CI) without an S3 endpoint.
    struct Fixture {
        let dir: URL
        let endpoint: String
        let store: String
        /// The AWS variables that reach moto directly.
        let direct: [String: String]
        let training = ["train", "--rounds", "10", "--num-leaves", "7", "--early-stopping", "0", "--calibration-fraction", "0.2",
                        "--threads", "1", "--quiet", "--promote"]

        init?() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let endpoint = environment["LOUPE_TEST_S3_ENDPOINT"], !endpoint.isEmpty else {
                #expect(environment["CI"] != "true", "CI=true but LOUPE_TEST_S3_ENDPOINT is not set")
                print("⚠️  SKIPPING the S3 server tests: LOUPE_TEST_S3_ENDPOINT is not set (scripts/test starts moto)")
                return nil
            }
            self.endpoint = endpoint
            dir = try CLIRunner.temporaryDirectory()
            direct = ["AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIAS3SERVER", "AWS_SECRET_ACCESS_KEY": "s3-server-secret",
                      "AWS_REGION": "us-east-1"]
            store = "s3://loupe-server-test/run-\(UUID().uuidString.prefix(8).lowercased())"
            _ = try client.send(S3Request(.PUT, key: nil))  // the bucket (409 when it exists: fine)
            try sampleCSV(rows: 400).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
            #expect(try await loupe(["ingest", "a.csv"]).status == 0)
            let first = try await loupe(training)
            try #require(first.status == 0, "\(first.stderr)")
        }

        var client: S3Client { get throws { S3Client(configuration: try S3Configuration.fromEnvironment(url: store, environment: direct)) } }

        func loupe(_ arguments: [String]) async throws -> CLIRunner.Output {
            try await CLIRunner.run(arguments + ["--store", store, "--state-dir", dir.appendingPathComponent("cli").path],
                                    in: dir, environment: direct)
        }

        func remove() { try? FileManager.default.removeItem(at: dir) }
    }

    /// A server whose network to S3 is cut and restored by a proxy keeps pricing with the model it
    /// has, says the store is unreachable in Health and records every call meanwhile; once S3
    /// answers again it follows the promotion made during the outage and seals the archive
    /// segments that waited.
    @Test func aServerKeepsPricingWhileS3IsUnreachableAndCatchesUpAfter() async throws {
        guard let fixture = try await Fixture() else { return }
        defer { fixture.remove() }
        let (dir, store, direct, training) = (fixture.dir, fixture.store, fixture.direct, fixture.training)
        let s3Port = try #require(URL(string: fixture.endpoint)?.port)
        let loupe = fixture.loupe

        // The server reaches S3 only through the proxy.
        let proxy = try TCPProxy(toPort: s3Port)
        defer { proxy.cut() }
        var throughProxy = direct
        throughProxy["AWS_ENDPOINT_URL"] = "http://127.0.0.1:\(proxy.port)"
        let secretFile = dir.appendingPathComponent("internal.secret")
        try "outage-internal-secret-\(UUID().uuidString)".write(to: secretFile, atomically: true, encoding: .utf8)
        let state = dir.appendingPathComponent("s1")
        let server = try await BackgroundLoupe(
            ["server", "--store", store, "--state-dir", state.path, "--port", "0", "--metrics-port", "0", "--instance", "s1",
             "--internal-secret-file", secretFile.path, "--log-segment-age", "1s", "--no-inbox"],
            in: dir, log: "s1.log", environment: throughProxy, ready: /on 127\.0\.0\.1:(\d+)\./)
        defer { server.stop() }
        let client = try await LoupeClient.connect(.init(port: server.port, token: try String(contentsOf: secretFile, encoding: .utf8)))
        let diamond = Diamond(carat: 0.9, cut: .ideal, color: .f, clarity: .vs2, depth: 61.5, table: 56, x: 6.2, y: 6.2, z: 3.8)
        #expect(try await client.predict(diamond).modelVersion == 1)
        #expect(try await client.health().storeReachable)

        // S3 unreachable: Health says so, and pricing goes on with the loaded model.
        proxy.cut()
        #expect(try await eventually { try await !client.health().storeReachable })
        var priced = 1
        let openSegments = state.appendingPathComponent("capsule-s1/open").path
        func waitingSegments() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: openSegments)) ?? []).filter { $0.hasSuffix(".seg") }.count
        }
        // Calls over a few seconds, so several segments are finished while the store is away.
        var versions = Set<UInt32>()
        #expect(try await eventually {
            versions.insert(try await client.predict(diamond).modelVersion)
            priced += 1
            return waitingSegments() >= 3
        })
        #expect(versions == [1])
        #expect(try await client.health().ready)

        // A promotion made meanwhile (by a machine that still reaches S3).
        let second = try await loupe(training)
        try #require(second.status == 0, "\(second.stderr)")

        // S3 is back: the server follows the promotion and seals what waited.
        try proxy.restore()
        #expect(try await eventually { try await client.health().storeReachable })
        #expect(try await eventually { try await client.predict(diamond).modelVersion == 2 })
        priced += 1
        #expect(try await eventually { waitingSegments() <= 1 })
        await client.close()
        server.stop()
        let archive = try StoreLocation.openReadOnly(store, environment: direct)
        let sealedCalls = try PayloadArchiveReader.segments(store: archive).reduce(0) { $0 + $1.count }
        // Every call, the Health checks too, is recorded; shutdown sealed the last segment.
        #expect(sealedCalls >= priced)
        #expect(waitingSegments() == 0)
        #expect(server.output.contains("could not seal a payload archive segment"))
        #expect(server.output.contains("the store answers again"))
    }
}

extension S3ServerTests {
    /// Files dropped into the bucket's inbox are taken once, by whichever server leads; when it
    /// dies the next leader takes what comes next. A file that is not diamond data moves to
    /// failed/ with the reason beside it.
    @Test func theLeaderTakesFilesFromTheBucketsInboxAndANewLeaderGoesOn() async throws {
        guard let fixture = try await Fixture() else { return }
        defer { fixture.remove() }
        let secretFile = fixture.dir.appendingPathComponent("internal.secret")
        try "inbox-internal-secret-\(UUID().uuidString)".write(to: secretFile, atomically: true, encoding: .utf8)
        var servers: [BackgroundLoupe] = []
        defer { for server in servers { server.stop() } }
        for name in ["a", "b"] {
            servers.append(try await BackgroundLoupe(
                ["server", "--store", fixture.store, "--state-dir", fixture.dir.appendingPathComponent(name).path, "--port", "0",
                 "--metrics-port", "0", "--instance", name, "--internal-secret-file", secretFile.path, "--scheduler-lease", "2s",
                 "--drift-threshold", "0"],
                in: fixture.dir, log: "\(name).log", environment: fixture.direct, ready: /on 127\.0\.0\.1:(\d+)\./))
        }
        let leads = "now runs the scheduler, the inbox"
        #expect(try await eventually { servers.contains { $0.output.contains(leads) } })
        let leader = try #require(servers.first { $0.output.contains(leads) })
        let follower = try #require(servers.first { $0 !== leader })
        let client = try fixture.client
        let prefix = String(fixture.store.dropFirst("s3://loupe-server-test/".count)) + "/"
        func objects(_ folder: String) throws -> [String] {
            let response = try client.send(S3Request(.GET, key: nil, query: [("list-type", "2"), ("prefix", prefix + folder)]))
            return String(decoding: response.body, as: UTF8.self).matches(of: /<Key>([^<]+)<\/Key>/)
                .map { String($0.1.dropFirst(prefix.count)) }
        }
        func datasetVersion() throws -> Int? {
            try StoreLocation.openReadOnly(fixture.store, environment: fixture.direct).latestDataset(name: "diamonds")?.version
        }

        _ = try client.send(S3Request(.PUT, key: prefix + "inbox/december.csv", body: Array(sampleCSV(rows: 120, seed: 5).utf8)))
        _ = try client.send(S3Request(.PUT, key: prefix + "inbox/broken.csv", body: Array("not,a,diamond\n1,2,3\n".utf8)))
        #expect(try await eventually { try objects("inbox/").filter { !$0.contains("/processed/") && !$0.contains("/failed/") }.isEmpty })
        let processed = try objects("inbox/processed/")
        #expect(processed.count == 1 && processed[0].hasSuffix("-december.csv"), "\(processed)")
        let failed = try objects("inbox/failed/")
        #expect(failed.count == 2 && failed.contains { $0.hasSuffix("-broken.csv.error.txt") }, "\(failed)")
        #expect(leader.output.contains("ingested an inbox file") && !follower.output.contains("ingested an inbox file"))
        #expect(try datasetVersion() == 2)

        // The leader dies; the next one takes the next file.
        leader.kill()
        #expect(try await eventually { follower.output.contains(leads) })
        _ = try client.send(S3Request(.PUT, key: prefix + "inbox/january.csv", body: Array(sampleCSV(rows: 120, seed: 6).utf8)))
        #expect(try await eventually { try objects("inbox/processed/").count == 2 })
        #expect(follower.output.contains("ingested an inbox file"))
        #expect(try datasetVersion() == 3)
    }
}
