import Foundation
import Synchronization
import TokenStore

/// A token store that shares rate limits without PostgreSQL, for gateway tests that run
/// everywhere: tokens in a SQLite file (each gateway its own handle on it, as with separate
/// processes) and the shared buckets and heartbeats in memory (`SharedBuckets`, the same rules
/// as PostgreSQL's), shared by every store made from one `Shared`. `Shared.failing` makes the
/// rate leases and heartbeats fail, as a database that stopped answering would.
final class SharedLimitsStore: TokenStore, RateLeaseStore {
    final class Shared: Sendable {
        let path: String
        let buckets = Mutex(SharedBuckets())
        let heartbeats = Mutex<[String: Double]>([:])
        private let failure = Atomic<Bool>(false)
        init(path: String) { self.path = path }
        var failing: Bool {
            get { failure.load(ordering: .relaxed) }
            set { failure.store(newValue, ordering: .relaxed) }
        }
    }

    let shared: Shared
    private let tokens: SQLiteTokenStore
    private let clock: ManualClock

    init(_ shared: Shared, clock: ManualClock) throws {
        self.shared = shared
        self.clock = clock
        tokens = try SQLiteTokenStore(path: shared.path)
    }

    func leaseRate(_ request: RateLeaseRequest) async throws -> RateLease {
        try check()
        let now = request.at ?? clock.now
        return shared.buckets.withLock {
            $0.lease(request.tokenID, request.limits, calls: request.calls, rows: request.rows, at: now)
        }
    }

    func heartbeat(gateway: String, liveWithin: Double, at: Double?) async throws -> Int {
        try check()
        // Liveness is the test's to arrange: every gateway that beat and did not leave counts.
        return shared.heartbeats.withLock { beats in
            beats[gateway] = at ?? clock.now
            return beats.count
        }
    }

    func removeHeartbeat(gateway: String) async throws {
        try check()
        _ = shared.heartbeats.withLock { $0.removeValue(forKey: gateway) }
    }

    private func check() throws {
        if shared.failing { throw TokenStoreError(.unavailable, "the shared buckets are down (test)") }
    }

    func insert(_ record: TokenRecord) async throws { try await tokens.insert(record) }
    func record(id: String) async throws -> TokenRecord? { try await tokens.record(id: id) }
    func records() async throws -> [TokenRecord] { try await tokens.records() }
    func revoke(id: String, at date: Date) async throws -> TokenRecord { try await tokens.revoke(id: id, at: date) }
    func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord {
        try await tokens.rotate(id: id, replacement: replacement, oldExpiresAt: oldExpiresAt)
    }
    func generation() async throws -> Int64 { try await tokens.generation() }
    func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64] {
        try await tokens.addUsage(rows, day: day)
    }
    func appendAudit(_ events: [AuditEvent]) async throws { try await tokens.appendAudit(events) }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await tokens.auditEvents(limit: limit) }
    func close() async { await tokens.close() }
}
