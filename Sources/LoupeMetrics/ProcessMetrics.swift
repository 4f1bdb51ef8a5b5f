import Prometheus
import Synchronization

/// What every Loupe process exports beside its own metrics: the standard Prometheus `process_*`
/// families (read from /proc at each scrape, so they cost nothing between scrapes) and
/// `loupe_build_info{version}` 1. One instance per registry (`shared(in:version:)`): `loupe
/// serve` shares a registry between server and gateway, and two instances would each add the
/// CPU time to the one counter.
public final class ProcessMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let cpu: Counter
    private let cpuSeen = Mutex<Double>(0)
    private let resident: Gauge
    private let virtual: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let startTime: Gauge
    private let threads: Gauge

    private static let instances = Mutex<[ObjectIdentifier: WeakReference]>([:])

    private final class WeakReference: @unchecked Sendable {
        weak var value: ProcessMetrics?
        init(_ value: ProcessMetrics) { self.value = value }
    }

    /// The process metrics of `registry`, made on first use. (An instance holds its registry,
    /// so a live one's identifier cannot belong to another registry.)
    public static func shared(
        in registry: PrometheusCollectorRegistry, version: String = LoupeBuild.version
    ) -> ProcessMetrics {
        instances.withLock { instances in
            let id = ObjectIdentifier(registry)
            if let existing = instances[id]?.value, existing.registry === registry { return existing }
            instances = instances.filter { $0.value.value != nil }
            let made = ProcessMetrics(registry: registry, version: version)
            instances[id] = WeakReference(made)
            return made
        }
    }

    private init(registry: PrometheusCollectorRegistry, version: String) {
        self.registry = registry
        cpu = registry.makeCounter(
            descriptor: .named("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds."))
        resident = registry.makeGauge(
            descriptor: .named("process_resident_memory_bytes", help: "Resident memory size in bytes."))
        virtual = registry.makeGauge(
            descriptor: .named("process_virtual_memory_bytes", help: "Virtual memory size in bytes."))
        openFDs = registry.makeGauge(descriptor: .named("process_open_fds", help: "Number of open file descriptors."))
        maxFDs = registry.makeGauge(
            descriptor: .named("process_max_fds", help: "Maximum number of open file descriptors."))
        startTime = registry.makeGauge(
            descriptor: .named("process_start_time_seconds",
                help: "Start time of the process since unix epoch in seconds."))
        threads = registry.makeGauge(
            descriptor: .named("process_threads", help: "Number of OS threads in the process."))
        registry.makeGauge(
            descriptor: .named("loupe_build_info", help: "Always 1; the version of Loupe this process runs is in the label."),
            labels: [("version", version)]
        ).set(Int64(1))
        update()
    }

    /// Reads the process's figures now; call before each exposition.
    public func update() {
        guard let stats = ProcessStats.current() else { return }
        // The kernel gives the total; the counter only takes increments.
        let delta = cpuSeen.withLock { seen in
            defer { seen = max(seen, stats.cpuSeconds) }
            return max(0, stats.cpuSeconds - seen)
        }
        if delta > 0 { cpu.increment(by: delta) }
        resident.set(Double(stats.residentBytes))
        virtual.set(Double(stats.virtualBytes))
        openFDs.set(Double(stats.openFDs))
        if let max = stats.maxFDs { maxFDs.set(Double(max)) }
        startTime.set(stats.startTime)
        threads.set(Double(stats.threads))
    }
}
