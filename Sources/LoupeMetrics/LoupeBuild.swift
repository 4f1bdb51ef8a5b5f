import Prometheus

/// The version of Loupe this build is, as `loupe_build_info{version}` reports it (the server's
/// `LoupeVersion` and the gateway's version string are made from the same number).
public enum LoupeBuild {
    public static let version = "0.4.0"
}

extension MetricNameDescriptor {
    /// A descriptor for a metric whose full name is written out (`loupe_calls_total`): the
    /// registry's name-and-help makers are deprecated in favour of descriptors.
    public static func named(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
