import Prometheus
import Synchronization

/// The log's counters: exact atomics for tests and `RequestLog.counts`, mirrored into a
/// Prometheus registry (the server's) when one is given.
///
/// Every record handed to the log ends in exactly one of `written` (committed to the
/// guestbook by the writer), `spilled` (made durable in a spill file, to be replayed) or
/// `dropped` (only when the hand-off queue's byte bound is exceeded; logged).
final class RequestLogCounters: Sendable {
    private let queued = Atomic<Int>(0), written = Atomic<Int>(0), spilled = Atomic<Int>(0)
    private let replayed = Atomic<Int>(0), dropped = Atomic<Int>(0), recovered = Atomic<Int>(0)
    private let catchUps = Atomic<Int>(0)
    private let exported: [Counter]?
    private let pendingGauge: Gauge?
    private let unsealedGauge: Gauge?

    enum Kind: Int, CaseIterable {
        case queued, written, spilled, replayed, dropped, recovered, catchUps
        var metric: String { self == .catchUps ? "catch_ups" : "\(self)" }
        var help: String {
            switch self {
            case .queued: "Calls handed to the request log"
            case .written: "Guestbook rows committed by the writer"
            case .spilled: "Guestbook rows spilled to disk while the database was slow or down"
            case .replayed: "Spilled or recovered rows replayed into the guestbook"
            case .dropped: "Calls not recorded because the hand-off queue was over its byte bound"
            case .recovered: "Rows read back from segments left open by a crash"
            case .catchUps: "Times the low-priority appender fell behind by more than the lag bound and a thread at normal priority caught up"
            }
        }
    }

    init(registry: PrometheusCollectorRegistry?) {
        // loupe_requestlog_<kind>_total, loupe_requestlog_pending.
        exported = registry.map { r in
            Kind.allCases.map {
                r.makeCounter(descriptor: MetricNameDescriptor(
                    namespace: "loupe", subsystem: "requestlog", metricName: $0.metric, unitName: "total", helpText: $0.help))
            }
        }
        pendingGauge = registry?.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "loupe", subsystem: "requestlog", metricName: "pending", unitName: "",
            helpText: "Guestbook rows waiting for the database"))
        unsealedGauge = registry?.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "loupe", subsystem: "requestlog", metricName: "unsealed_segments", unitName: "",
            helpText: "Finished payload archive segments waiting to be sealed into the store (above 0 for long: the store cannot be written)"))
    }

    func add(_ kind: Kind, _ n: Int) {
        guard n != 0 else { return }
        with(kind) { $0.add(n, ordering: .relaxed) }
        exported?[kind.rawValue].increment(by: Int64(n))
    }

    func value(_ kind: Kind) -> Int { with(kind) { $0.load(ordering: .relaxed) } }

    @discardableResult
    private func with<R>(_ kind: Kind, _ body: (borrowing Atomic<Int>) -> R) -> R {
        switch kind {
        case .queued: body(queued)
        case .written: body(written)
        case .spilled: body(spilled)
        case .replayed: body(replayed)
        case .dropped: body(dropped)
        case .recovered: body(recovered)
        case .catchUps: body(catchUps)
        }
    }

    func pending(_ n: Int) { pendingGauge?.set(Int64(n)) }

    func unsealed(_ n: Int) { unsealedGauge?.set(Int64(n)) }
}

/// A snapshot of the log's counters.
public struct RequestLogCounts: Sendable, Hashable, CustomStringConvertible {
    public var queued: Int
    public var written: Int
    public var spilled: Int
    public var replayed: Int
    public var dropped: Int
    public var recovered: Int
    /// Rows in memory waiting for the database.
    public var pending: Int

    public var description: String {
        "queued \(queued), written \(written), spilled \(spilled), replayed \(replayed), dropped \(dropped), "
            + "recovered \(recovered), pending \(pending)"
    }
}
