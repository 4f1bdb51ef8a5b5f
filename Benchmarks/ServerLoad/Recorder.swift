import Histogram
import Synchronization

/// Latencies (HdrHistogram, nanoseconds) and failures, from many tasks.
final class Recorder: Sendable {
    private let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three))
    private let failures = Atomic<Int>(0)

    func record(_ d: Duration) {
        let ns = UInt64(max(1, d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000))
        histogram.withLock { _ = $0.record(min(ns, 60_000_000_000)) }
    }

    func failed() { failures.add(1, ordering: .relaxed) }

    func result(label: String, seconds: Double, rowsPerCall: Int, frameBytes: Int, mode: String, cpuSeconds: Double) -> BenchResult {
        histogram.withLock { h in
            let calls = Int(h.totalCount)
            func us(_ p: Double) -> Double { Double(h.valueAtPercentile(p)) / 1000 }
            return BenchResult(
                label: label, mode: mode, seconds: seconds, calls: calls, failures: failures.load(ordering: .relaxed),
                callsPerSecond: Double(calls) / seconds, rowsPerSecond: Double(calls * rowsPerCall) / seconds,
                frameBytes: frameBytes, p50Microseconds: us(50), p90Microseconds: us(90), p99Microseconds: us(99),
                p999Microseconds: us(99.9), maxMicroseconds: Double(h.max) / 1000, cpuSeconds: cpuSeconds,
                latencyCounts: h.recordedValues().map { [Double($0.value) / 1000, Double($0.count)] })
        }
    }
}
