import NIOCore

/// The clock the gateway's rate limits run on: seconds on a monotonic clock. Tests pass a
/// simulated one to drive buckets through exact seconds without depending on the machine's
/// speed; with shared limits a simulated clock also drives the shared buckets in the store
/// (which otherwise refill by the store's own clock, the one clock every gateway agrees on).
public struct GatewayClock: Sendable {
    /// Now, in seconds.
    public let now: @Sendable () -> Double
    /// Whether the store's shared buckets follow this clock instead of the store's.
    let drivesStore: Bool

    /// The machine's monotonic clock; shared buckets refill by the store's clock.
    public static let system = GatewayClock(
        now: { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }, drivesStore: false)

    /// A clock for tests: the gateway's buckets, and the shared ones in the store, follow `now`.
    public static func simulated(_ now: @escaping @Sendable () -> Double) -> GatewayClock {
        GatewayClock(now: now, drivesStore: true)
    }
}
