import DiamondSchema
import Synchronization

/// The most recent diamonds the server was asked to price, per feature: the "actual"
/// distribution the drift trigger compares with the training data. A fixed-size ring per
/// feature; adding rows never allocates once the window is full.
///
/// It is fed by the server's Predict and BatchPredict calls when the request log is off; with
/// the log on, the scheduler reads recent Predict inputs from the guestbook instead (a
/// `DriftInputSource` of the server's).
public final class DriftWindow: DriftInputSource {
    public let capacity: Int
    private let state: Mutex<State>

    private struct State {
        var columns: [[Double]]
        var next = 0
        var count = 0
    }

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0)
        self.capacity = capacity
        state = Mutex(State(columns: Array(repeating: [Double](repeating: 0, count: capacity), count: Feature.count)))
    }

    /// Adds rows given as feature columns (`columns[f][row]`); rows with a non-finite value are skipped.
    public func add(columns: [[Double]]) {
        guard columns.count == Feature.count, let rows = columns.first?.count, rows > 0 else { return }
        guard columns.allSatisfy({ $0.count == rows }) else { return }
        // Only the last `capacity` rows can stay, and only rows finite in every feature. Column
        // by column through buffer pointers: element by element into the nested arrays under
        // the lock cost ~0.7 ms for a 100k-row call (uniqueness and bounds checks per value).
        let first = max(0, rows - capacity)
        var finite = [Bool](repeating: true, count: rows - first)
        finite.withUnsafeMutableBufferPointer { finite in
            for column in columns {
                column.withUnsafeBufferPointer { values in
                    for i in 0..<finite.count where !values[first + i].isFinite { finite[i] = false }
                }
            }
        }
        let kept = finite.indices.filter { finite[$0] }.map { first + $0 }
        guard !kept.isEmpty else { return }
        let capacity = capacity
        state.withLock { s in
            for f in 0..<Feature.count {
                var slot = s.next
                s.columns[f].withUnsafeMutableBufferPointer { ring in
                    columns[f].withUnsafeBufferPointer { values in
                        for row in kept {
                            ring[slot] = values[row]
                            slot = slot + 1 == capacity ? 0 : slot + 1
                        }
                    }
                }
            }
            s.next = (s.next + kept.count) % capacity
            s.count = min(capacity, s.count + kept.count)
        }
    }

    /// Adds one diamond.
    public func add(_ diamond: Diamond) {
        add(columns: diamond.features.map { [$0] })
    }

    /// The rows in the window, as feature columns.
    public func snapshot() -> [[Double]] {
        state.withLock { s in s.columns.map { Array($0.prefix(s.count)) } }
    }

    public var count: Int { state.withLock { $0.count } }

    /// Empties the window (after a retrain, the new model starts from the new inputs).
    public func clear() {
        state.withLock {
            $0.next = 0
            $0.count = 0
        }
    }
}

/// Where the drift trigger gets recent inputs: the in-memory `DriftWindow`, or the request
/// log's guestbook. `snapshot` is called on every scheduler round, so it must be cheap (a
/// source backed by a database refreshes a cache in the background).
public protocol DriftInputSource: Sendable {
    /// Rows available now.
    var count: Int { get }
    /// The recent rows as feature columns (`[feature][row]`, grades as ordinal codes).
    func snapshot() -> [[Double]]
    /// Forgets the rows so far (after a retrain, the new model starts from new inputs).
    func clear()
}

/// Several input sources read as one: the guestbook's Predict calls (which outlive a restart)
/// and the window of BatchPredict rows the server scored, with the request log on.
public struct CombinedDriftInputs: DriftInputSource {
    public let sources: [any DriftInputSource]

    public init(_ sources: [any DriftInputSource]) {
        self.sources = sources
    }

    public var count: Int { sources.reduce(0) { $0 + $1.count } }

    public func snapshot() -> [[Double]] {
        var columns = [[Double]](repeating: [], count: Feature.count)
        for source in sources {
            for (f, values) in source.snapshot().enumerated() where f < columns.count { columns[f] += values }
        }
        return columns
    }

    public func clear() {
        for source in sources { source.clear() }
    }
}
