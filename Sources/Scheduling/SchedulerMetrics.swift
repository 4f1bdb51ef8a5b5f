import LoupeMetrics
import Prometheus

/// The scheduler's state as Prometheus gauges in a process's registry (the one `/metrics`
/// serves): hand `update` to the scheduler's `onStatus`.
public struct SchedulerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The scheduler's state as gauges: failures in a row, the next interval run, the last
    /// run's outcome (1 promoted, 0 kept, -1 failed), the drift index per feature.
    public func update(_ status: SchedulerStatus) {
        registry.makeGauge(
            descriptor: .named("loupe_scheduler_consecutive_failures",
                help: "Scheduled retrains that failed in a row.")).set(Int64(status.consecutiveFailures))
        if let next = status.nextIntervalRun {
            registry.makeGauge(
                descriptor: .named("loupe_scheduler_next_run_timestamp_seconds",
                    help: "When the next interval retrain is due (Unix time).")).set(next.timeIntervalSince1970)
        }
        if let last = status.lastRun, last.finished != nil {
            registry.makeGauge(
                descriptor: .named("loupe_scheduler_last_run_outcome",
                    help: "The last scheduled retrain: 1 promoted, 0 kept production, -1 failed.")
            ).set(Int64(last.error != nil ? -1 : (last.promoted == true ? 1 : 0)))
        }
        registry.makeGauge(
            descriptor: .named("loupe_scheduler_drift_needs_labels",
                help: "1 while inputs drifted past the threshold but no new labelled rows exist to retrain on.")
        ).set(Int64(status.driftNeedsLabels == nil ? 0 : 1))
        for (feature, psi) in status.drift {
            registry.makeGauge(
                descriptor: .named("loupe_drift_psi",
                    help: "Population stability index of recent inputs against the training data, by feature."),
                labels: [("feature", feature)]
            ).set(psi)
        }
    }
}
