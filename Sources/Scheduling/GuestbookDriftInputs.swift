import DiamondSchema
import Foundation
import RequestLog
import Synchronization

/// The drift trigger's recent inputs read from the request log's guestbook (successful Predict
/// calls since the last retrain, newest first, up to `capacity`). The scheduler asks on every
/// round and must not wait for a database: each ask returns the cached rows and starts a
/// refresh in the background, so the trigger sees the guestbook as of the previous round.
public final class GuestbookDriftInputs: DriftInputSource {
    let log: RequestLog
    let capacity: Int
    private let state: Mutex<State>

    private struct State {
        var columns: [[Double]] = Array(repeating: [], count: Feature.count)
        var since = Date()
        var refreshing = false
    }

    public init(log: RequestLog, capacity: Int = 10_000) {
        self.log = log
        self.capacity = capacity
        state = Mutex(State())
    }

    public var count: Int {
        refresh()
        return state.withLock { $0.columns[0].count }
    }

    public func snapshot() -> [[Double]] { state.withLock { $0.columns } }

    public func clear() {
        state.withLock {
            $0.columns = Array(repeating: [], count: Feature.count)
            $0.since = Date()
        }
    }

    private func refresh() {
        guard let since = state.withLock({ s -> Date? in
            guard !s.refreshing else { return nil }
            s.refreshing = true
            return s.since
        }) else { return }
        let log = log, capacity = capacity
        Task { [weak self] in
            let diamonds = (try? await log.recentPredictInputs(since: since, limit: capacity)) ?? []
            var columns: [[Double]] = Array(repeating: [], count: Feature.count)
            for diamond in diamonds {
                guard let features = diamond.features, features.allSatisfy(\.isFinite) else { continue }
                for f in 0..<Feature.count { columns[f].append(features[f]) }
            }
            self?.state.withLock { s in
                s.refreshing = false
                // A clear() while reading wins: those rows predate the retrain.
                if s.since == since { s.columns = columns }
            }
        }
    }
}
