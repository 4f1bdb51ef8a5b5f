import Foundation

/// What a run measured.
struct BenchResult: Encodable {
    var label: String
    var mode: String
    var seconds: Double
    var calls: Int
    var failures: Int
    var callsPerSecond: Double
    var rowsPerSecond: Double
    var frameBytes: Int
    var p50Microseconds: Double
    var p90Microseconds: Double
    var p99Microseconds: Double
    var p999Microseconds: Double
    var maxMicroseconds: Double
    /// CPU seconds this process (the load generator, or the in-process scorer) used during the run.
    var cpuSeconds: Double
    /// Every latency bucket recorded, as [µs, calls] (`--json` only): runs' distributions add up
    /// (bench/requestlog.py takes the p99 of all of a mode's calls over its rounds).
    var latencyCounts: [[Double]]

    var text: String {
        """
        \(label) (\(mode)), \(format(seconds, 1)) s: \(calls) calls, \(failures) failed
          \(format(callsPerSecond, 0)) calls/s, \(format(rowsPerSecond, 0)) rows/s
          latency µs: p50 \(format(p50Microseconds, 1))  p90 \(format(p90Microseconds, 1))  \
        p99 \(format(p99Microseconds, 1))  p99.9 \(format(p999Microseconds, 1))  max \(format(maxMicroseconds, 1))
        """
    }

    /// As `loupe`'s `--json` output: pretty-printed, keys sorted.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    private func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }
}
