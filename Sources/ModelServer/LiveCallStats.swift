import Histogram
import LoupeProtocol
import Synchronization

/// Calls each model version answered (Predict and BatchPredict), in memory: how many, how many
/// failed on the server's side, and their latencies. The rollout guard compares a canary or a
/// newly promoted version with production on these; `reset` starts a version's count afresh when
/// it takes a new role, so it is judged on its own calls.
public final class LiveCallStats: Sendable {
    /// One version's figures.
    public struct Snapshot: Sendable, Hashable {
        public var calls: Int
        /// Calls that failed for a reason of the server's (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED):
        /// a partner's bad input (INVALID_ARGUMENT) says nothing about a version.
        public var serverErrors: Int
        /// Latency percentiles in microseconds (0 with no calls).
        public var p50Microseconds: Int64
        public var p99Microseconds: Int64

        public var errorRate: Double { calls == 0 ? 0 : Double(serverErrors) / Double(calls) }

        public init(calls: Int, serverErrors: Int, p50Microseconds: Int64, p99Microseconds: Int64) {
            self.calls = calls
            self.serverErrors = serverErrors
            self.p50Microseconds = p50Microseconds
            self.p99Microseconds = p99Microseconds
        }
    }

    private struct Entry {
        var calls = 0
        var serverErrors = 0
        var latencies = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .two)
    }

    private let entries = Mutex<[Int: Entry]>([:])

    public init() {}

    /// Counts a finished call answered (or attempted) by `version`.
    func record(version: Int, status: StatusCode, nanoseconds: Int64) {
        let micros = UInt64(max(0, nanoseconds / 1000))
        entries.withLock { entries in
            var entry = entries[version] ?? Entry()
            entry.calls += 1
            if Self.serverSide.contains(status) { entry.serverErrors += 1 }
            _ = entry.latencies.record(min(micros, 600_000_000))
            entries[version] = entry
        }
    }

    static let serverSide: Set<StatusCode> = [.internalError, .unavailable, .deadlineExceeded]

    /// `version`'s figures since it was last reset.
    public func snapshot(version: Int) -> Snapshot {
        entries.withLock { entries in
            guard let e = entries[version], e.calls > 0 else {
                return Snapshot(calls: 0, serverErrors: 0, p50Microseconds: 0, p99Microseconds: 0)
            }
            return Snapshot(
                calls: e.calls, serverErrors: e.serverErrors,
                p50Microseconds: Int64(e.latencies.valueAtPercentile(50)),
                p99Microseconds: Int64(e.latencies.valueAtPercentile(99)))
        }
    }

    /// Forgets `version`'s figures (it starts a new role: canary, production).
    public func reset(version: Int) {
        entries.withLock { _ = $0.removeValue(forKey: version) }
    }
}
