import Foundation

/// How the request log records. Every field has a default that suits one machine.
public struct RequestLogConfiguration: Sendable {
    /// The time capsule's working directory (`<store>/capsule`): the open segment and the
    /// spill files. Sealed segments go into the artifact store.
    public var capsuleDirectory: String
    /// Guestbook rows older than this are removed (nil keeps them forever).
    public var retention: Duration?
    /// How often old rows are removed.
    public var retentionCheckInterval: Duration
    /// A segment is sealed once it holds this many bytes…
    public var segmentMaxBytes: Int
    /// …or has been open this long.
    public var segmentMaxAge: Duration
    /// Rows that may wait in memory for the database; past it they spill to disk.
    public var pendingCapacity: Int
    /// Rows per database transaction.
    public var batchSize: Int
    /// fsync the capsule after every group of appends (power-loss safety; kill -9 loses no
    /// appended record either way).
    public var syncAppends: Bool
    /// How long to wait before trying a failed database again.
    public var retryInterval: Duration
    /// zstd level of capsule records (1: fast; payloads are mostly doubles).
    public var compressionLevel: Int32
    /// Payload bytes the hand-off queue may hold before calls' records are dropped (counted
    /// in `loupe_requestlog_dropped_total` and logged; only a stalled disk gets here).
    public var queueLimitBytes: Int
    /// How long a graceful shutdown keeps trying the database before spilling what is left.
    public var shutdownTimeout: Duration
    /// Unique per process: row ids are `<runID>-<sequence>`.
    public var runID: String

    public init(
        capsuleDirectory: String, retention: Duration? = .seconds(30 * 86_400), retentionCheckInterval: Duration = .seconds(600),
        segmentMaxBytes: Int = 64 << 20, segmentMaxAge: Duration = .seconds(3600), pendingCapacity: Int = 10_000,
        batchSize: Int = 1_000, syncAppends: Bool = true, retryInterval: Duration = .milliseconds(500),
        compressionLevel: Int32 = 1, queueLimitBytes: Int = 1 << 30, shutdownTimeout: Duration = .seconds(5),
        runID: String = RequestLogConfiguration.newRunID()
    ) {
        self.capsuleDirectory = capsuleDirectory
        self.retention = retention
        self.retentionCheckInterval = retentionCheckInterval
        self.segmentMaxBytes = segmentMaxBytes
        self.segmentMaxAge = segmentMaxAge
        self.pendingCapacity = pendingCapacity
        self.batchSize = batchSize
        self.syncAppends = syncAppends
        self.retryInterval = retryInterval
        self.compressionLevel = compressionLevel
        self.queueLimitBytes = queueLimitBytes
        self.shutdownTimeout = shutdownTimeout
        self.runID = runID
    }

    /// 8 random lower-case hex digits.
    public static func newRunID() -> String {
        String(UInt32.random(in: .min ... .max), radix: 16).leftPadded(to: 8)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
