import ArtifactStore
import Foundation
import LoupeProtocol
import LoupeTestKit
import NIOCore
import RequestLog
import Synchronization
import Testing

/// The guestbook engines every contract test runs on.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// The PostgreSQL URL for tests, nil (with a loud note) when none is set outside CI; under CI a
/// missing server fails the test.
func postgresTestURL() throws -> String? {
    if let url = ProcessInfo.processInfo.environment["LOUPE_TEST_POSTGRES_URL"], !url.isEmpty { return url }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        throw RequestLogError(.unavailable, "CI=true but LOUPE_TEST_POSTGRES_URL is not set: PostgreSQL tests cannot be skipped in CI")
    }
    print("⚠️  SKIPPING PostgreSQL request log tests: LOUPE_TEST_POSTGRES_URL is not set (scripts/test starts a server)")
    return nil
}

/// A fresh table prefix, so parallel tests on one PostgreSQL database never share a table.
func freshPrefix() -> String { "t" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "") + "_" }

/// A temporary directory with an artifact store in it.
struct Scratch {
    let url: URL
    let store: ArtifactStore

    init() throws {
        url = TestFiles.unique("loupe-requestlog")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        store = try ArtifactStore.open(at: url.appendingPathComponent("store").path)
    }

    var path: String { url.path }
    /// The payload archive's working directory.
    var archive: String { url.appendingPathComponent("capsule").path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A guestbook of `engine` (nil when PostgreSQL is not available outside CI), with its own table.
/// PostgreSQL calls get 30 s, as the token store tests do: the full suite loads the machine.
func makeGuestbook(_ engine: Engine, scratch: Scratch, prefix: String = freshPrefix(), timeout: TimeAmount = .seconds(30))
    async throws -> (any Guestbook)?
{
    switch engine {
    case .sqlite:
        return try SQLiteGuestbook(path: scratch.url.appendingPathComponent("requests.sqlite").path, tablePrefix: prefix)
    case .postgres:
        guard let url = try postgresTestURL() else { return nil }
        return try await PostgresGuestbook(url: url, tablePrefix: prefix, operationTimeout: timeout)
    }
}

/// A row with the fields a test cares about.
func row(
    _ n: Int, at: Int64 = 1_700_000_000_000, principal: String = "acme", method: String = "Predict", status: String = "OK",
    latency: Int64 = 100, rows: Int = 1
) -> GuestbookRow {
    GuestbookRow(
        id: "test-\(n)", atMilliseconds: at + Int64(n), requestID: Int64(n), principal: principal, method: method,
        modelName: "diamonds", modelVersion: 1, rows: rows, latencyMicroseconds: latency, status: status,
        error: status == "OK" ? nil : "bad \(n)",
        diamond: method == "Predict"
            ? LoggedDiamond(carat: 1 + Double(n) / 100, cut: "Ideal", color: "G", clarity: "VS1", depth: 61.8, table: 56,
                            x: 6.43, y: 6.47, z: 3.99) : nil,
        price: method == "Predict" ? 5000 + Double(n) : nil, low: method == "Predict" ? 4500 : nil,
        high: method == "Predict" ? 5500 : nil, level: method == "Predict" ? 0.9 : nil)
}

/// A finished Predict call as the server hands it over.
func predictCall(_ n: Int, principal: String = "acme") throws -> CallRecord {
    var request = Loupe_V1_PredictRequest()
    request.diamond.carat = 1 + Double(n % 100) / 100
    request.diamond.cut = .ideal
    request.diamond.color = .g
    request.diamond.clarity = .vs1
    request.diamond.depth = 61.8
    request.diamond.table = 56
    request.diamond.x = 6.43
    request.diamond.y = 6.47
    request.diamond.z = 3.99
    var response = Loupe_V1_PredictResponse()
    response.price = 5000 + Double(n)
    response.low = 4500
    response.high = 5500
    response.level = 0.9
    response.modelName = "diamonds"
    response.modelVersion = 3
    let header = FrameHeader.request(.predict, requestID: UInt32(n))
    var summary = CallSummary(asked: request)
    summary.answered(response)
    return CallRecord(
        at: Date(), principal: principal, method: "Predict", request: try Frame(header: header, message: request),
        response: try Frame(header: header.response(), message: response), status: .ok, latencyNanoseconds: 250_000,
        summary: summary)
}

/// A guestbook that can be made to fail or stall, in front of a real one.
final class FlakyGuestbook: Guestbook {
    let inner: any Guestbook
    private let state = Mutex((down: false, delay: Duration.zero, inserts: 0))

    init(_ inner: any Guestbook) { self.inner = inner }

    func set(down: Bool) { state.withLock { $0.down = down } }
    func set(delay: Duration) { state.withLock { $0.delay = delay } }
    var inserts: Int { state.withLock { $0.inserts } }

    func insert(_ rows: [GuestbookRow]) async throws {
        let (down, delay) = state.withLock { s -> (Bool, Duration) in
            s.inserts += 1
            return (s.down, s.delay)
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        if down { throw RequestLogError(.unavailable, "the test made the database unavailable") }
        try await inner.insert(rows)
    }

    func rows(_ query: GuestbookQuery) async throws -> [GuestbookRow] { try await inner.rows(query) }
    func stats(_ query: GuestbookQuery) async throws -> GuestbookStats { try await inner.stats(query) }
    func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond] {
        try await inner.recentPredictInputs(since: since, limit: limit)
    }
    func insertShadow(_ rows: [GuestbookRow]) async throws { try await inner.insertShadow(rows) }
    func shadowRows(_ query: GuestbookQuery) async throws -> [GuestbookRow] { try await inner.shadowRows(query) }
    func insertOutcomes(_ scores: [OutcomeScore]) async throws { try await inner.insertOutcomes(scores) }
    func outcomeScores(model: String, since: Date?) async throws -> [OutcomeScore] {
        try await inner.outcomeScores(model: model, since: since)
    }
    func deleteOlder(than date: Date) async throws -> Int { try await inner.deleteOlder(than: date) }
    func count() async throws -> Int { try await inner.count() }
    var location: String { inner.location }
    func close() async { await inner.close() }
}

/// How long tests wait for the log to reach a state: a guard against hanging, never a timing
/// assertion (the full suite on two loaded cores can starve the writer for a long while).
let patience: Duration = .seconds(300)

/// Every request log suite runs inside this one, one suite at a time: together they would
/// crowd the two cores the whole test run shares (servers, 100k-row batches, databases).
@Suite(.serialized) enum RequestLogSuites {}

/// Polls `condition` every 50 ms for up to a minute (a guard against hanging, not a timing
/// assertion); returns whether it came true.
func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
    for _ in 0..<1200 {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}
