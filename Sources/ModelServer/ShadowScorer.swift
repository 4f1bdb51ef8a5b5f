import DiamondSchema
import Dispatch
import Foundation
import Logging
import ModelRuntime
import RequestLog
import Synchronization

/// Scores live calls with the shadow version, off the answering path: production's answer has
/// already gone to the partner; the shadow's is logged (the request log's shadow table, beside
/// the call's own row: the same principal, request id and time) and compared in the metrics.
///
/// One background thread does the work, so a shadow takes at most one core from serving; calls
/// that arrive while `maxPendingRows` rows wait are not shadowed (counted in
/// `loupe_shadow_dropped_rows_total`) rather than queued without bound.
final class ShadowScorer: Sendable {
    /// A call to score again.
    struct Job: Sendable {
        enum Input: Sendable {
            case diamond(Diamond, logged: LoggedDiamond?)
            case columns([[Double]])
        }

        var model: ServingModel
        var input: Input
        var level: Double
        var at: Date
        var principal: String
        var tokenID: String?
        var requestID: UInt64
        /// Production's prices for the same rows (NaN where it rejected one), for the comparison.
        var productionPrices: [Double]

        var rows: Int {
            switch input {
            case .diamond: 1
            case .columns(let columns): columns.first?.count ?? 0
            }
        }
    }

    private let queue = DispatchQueue(label: "loupe.shadow", qos: .utility)
    private let pendingRows = Atomic<Int>(0)
    let maxPendingRows: Int
    private let guestbook: (any Guestbook)?
    private let metrics: ServerMetrics
    private let logger: Logger
    private let unwritten = Mutex<[GuestbookRow]>([])
    private let sequence = Atomic<Int>(0)
    /// Writes to the request log under way.
    private let writing = Atomic<Int>(0)
    /// Makes row ids unique across processes (as the request log's `<run>-<sequence>`).
    private let run = String(UInt64.random(in: 0...UInt64.max), radix: 36)

    init(maxPendingRows: Int, guestbook: (any Guestbook)?, metrics: ServerMetrics, logger: Logger) {
        self.maxPendingRows = maxPendingRows
        self.guestbook = guestbook
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues a call for the shadow, unless the backlog is full.
    func submit(_ job: Job) {
        let rows = job.rows
        let queued = pendingRows.add(rows, ordering: .relaxed).newValue
        guard queued <= maxPendingRows else {
            pendingRows.subtract(rows, ordering: .relaxed)
            metrics.shadowDropped(rows)
            return
        }
        queue.async { [self] in
            score(job)
            if pendingRows.subtract(rows, ordering: .relaxed).newValue == 0 { flush() }
        }
    }

    /// Waits for the calls queued so far and writes their rows (graceful shutdown, tests).
    func drain() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async { done.resume() }
        }
        await write(take())
        while writing.load(ordering: .acquiring) > 0 { try? await Task.sleep(for: .milliseconds(5)) }
    }

    private func score(_ job: Job) {
        let started = DispatchTime.now().uptimeNanoseconds
        var row = GuestbookRow(
            id: "\(run)-s\(sequence.wrappingAdd(1, ordering: .relaxed).newValue)",
            atMilliseconds: Int64((job.at.timeIntervalSince1970 * 1000).rounded()), requestID: Int64(bitPattern: job.requestID),
            principal: job.principal, tokenID: job.tokenID, method: "Predict", modelName: job.model.name,
            modelVersion: job.model.version, rows: job.rows, latencyMicroseconds: 0, status: "OK")
        var shadowPrices: [Double]
        switch job.input {
        case .diamond(let diamond, let logged):
            row.diamond = logged
            switch job.model.predict(diamond, level: job.level) {
            case .success(let estimate):
                row.price = estimate.price
                row.low = estimate.low
                row.high = estimate.high
                row.level = estimate.level
                shadowPrices = [estimate.price]
            case .failure(let problem):
                row.status = "INVALID_ARGUMENT"
                row.error = problem.reason
                shadowPrices = [.nan]
            }
        case .columns(let columns):
            row.method = "BatchPredict"
            let result = job.model.predictBatch(columns: columns, level: job.level)
            shadowPrices = [Double](repeating: .nan, count: job.rows)
            for (i, index) in result.rows.enumerated() { shadowPrices[index] = result.estimates[i].price }
        }
        row.latencyMicroseconds = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000)
        metrics.shadowScored(rows: job.rows, medianRelativeDifference: Self.medianRelativeDifference(
            shadowPrices, job.productionPrices))
        let full = unwritten.withLock { rows in
            rows.append(row)
            return rows.count >= 256
        }
        if full { flush() }
    }

    /// The median of |shadow / production − 1| over the rows both priced (nil when none).
    static func medianRelativeDifference(_ shadow: [Double], _ production: [Double]) -> Double? {
        var differences: [Double] = []
        for (s, p) in zip(shadow, production) where s.isFinite && p.isFinite && p > 0 {
            differences.append(abs(s / p - 1))
        }
        guard !differences.isEmpty else { return nil }
        differences.sort()
        return differences[differences.count / 2]
    }

    private func take() -> [GuestbookRow] {
        unwritten.withLock { rows in
            defer { rows = [] }
            return rows
        }
    }

    private func flush() {
        let rows = take()
        guard !rows.isEmpty else { return }
        writing.add(1, ordering: .relaxed)
        Task {
            await write(rows)
            writing.subtract(1, ordering: .releasing)
        }
    }

    private func write(_ rows: [GuestbookRow]) async {
        guard let guestbook, !rows.isEmpty else { return }
        do {
            try await guestbook.insertShadow(rows)
        } catch {
            metrics.shadowLogFailed(rows.count)
            logger.warning("could not log shadow answers", metadata: ["rows": "\(rows.count)", "error": "\(error)"])
        }
    }
}
