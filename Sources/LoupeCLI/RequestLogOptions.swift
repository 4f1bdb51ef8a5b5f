import ArgumentParser
import ArtifactStore
import Foundation
import Logging
import Prometheus
import RequestLog

/// Where and how calls are recorded: `loupe serve` writes, `loupe logs` reads.
struct RequestLogOptions: ParsableArguments {
    @Option(help: """
        The request log's guestbook database: a SQLite file, or postgres://user:password@host:port/database \
        for several servers (default: $LOUPE_LOG_DB, else <store>/requests.sqlite).
        """)
    var logDB: String?

    @Option(help: "Prefix of the guestbook's table name (several deployments in one PostgreSQL database).")
    var logTablePrefix: String = "loupe_"

    /// The location used, given the artifact store directory.
    func location(store: String) -> String {
        logDB ?? ProcessInfo.processInfo.environment["LOUPE_LOG_DB"].flatMap { $0.isEmpty ? nil : $0 }
            ?? store + "/requests.sqlite"
    }

    /// The guestbook; `create` false (the readers) refuses a SQLite file that does not exist yet
    /// and a PostgreSQL server that does not answer; true (`serve`) starts without the
    /// PostgreSQL server, whose rows then spill until it answers.
    func openGuestbook(store: String, create: Bool = false, backgroundNice: Int32 = 10) async throws -> any Guestbook {
        let location = location(store: store)
        do {
            if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
                return try await PostgresGuestbook(url: location, tablePrefix: logTablePrefix, waitForDatabase: !create)
            }
            if location.contains("://") {
                throw RequestLogError(
                    .invalidArgument,
                    "--log-db must be a SQLite file path or postgres://user:password@host:port/database, got \(location)")
            }
            guard create || FileManager.default.fileExists(atPath: location) else {
                throw RequestLogError(
                    .invalidArgument,
                    "there is no request log at \(location) (loupe serve creates it; --store or --log-db name another)")
            }
            return try SQLiteGuestbook(path: location, tablePrefix: logTablePrefix, backgroundNice: backgroundNice)
        } catch {
            throw CLIError("request log: \(error)")
        }
    }
}

/// `loupe serve`'s request log settings.
struct ServeRequestLogOptions: ParsableArguments {
    @OptionGroup var location: RequestLogOptions

    @Flag(help: "Do not record calls (no guestbook rows, no payload archive); drift then uses an in-memory window.")
    var noRequestLog = false

    @Option(help: "Remove guestbook rows older than this (e.g. 30d, 12h); \"forever\" keeps them.")
    var logRetention: String = "30d"

    @Option(parsing: .unconditional, help: "Seal a payload archive segment into the store once it holds this many MiB…")
    var logSegmentMB: Int = 64

    @Option(help: "…or once it has been open this long (e.g. 1h, 10m).")
    var logSegmentAge: String = "1h"

    @Option(parsing: .unconditional, help: "While calls come, the appender records what arrived every this many milliseconds, as one group (at once after a group of 16 or more); 0: never wait.")
    var logGroupMs: Int = 2

    @Option(parsing: .unconditional, help: "Milliseconds between guestbook commits when fewer than a batch (1,000 rows) wait (the calls are in the payload archive meanwhile; this is how late `logs query` may see them).")
    var logCommitMs: Int = 250

    @Option(parsing: .unconditional, help: "Milliseconds between fsyncs of the payload archive segment (0: after every group); a call's guestbook row waits for it, and a power loss can lose this long's calls.")
    var logSyncMs: Int = 100

    @Option(parsing: .unconditional, help: "Nice value of the log's appender and SQLite writer threads, which also run as SCHED_BATCH (0 to 19; 0 leaves them as the process is; Linux).")
    var logNice: Int32 = 10

    @Option(parsing: .unconditional, help: "The most the appender at --log-nice may fall behind, in milliseconds: past it a thread at normal priority appends until the queue is fresh again (bounds what a kill -9 can lose on a saturated machine; 0: no bound).")
    var logMaxLagMs: Int = 100

    @Option(parsing: .unconditional, help: "zstd level of payload archive records over 4 KiB: 1 to 19, or -1 to -7 for zstd's fast levels (a 100k-row BatchPredict's record: -1 compresses ~12% faster into a ~12% larger archive than 1; higher levels are slower and gain little on payloads of doubles).")
    var logZstdLevel: Int32 = 1

    /// Levels `--log-zstd-level` takes: zstd's own range, less 0 (zstd's "default", 3, under
    /// another name) and the fast levels past -7, which gain little speed for much size.
    static let zstdLevels: [ClosedRange<Int32>] = [-7 ... -1, 1...19]

    /// The configured log for `store`, or nil with --no-request-log. Each server process on a
    /// store needs a payload archive directory of its own: `<store>/capsule` for `loupe serve`,
    /// `<store>/capsule-<instance>` for a named instance.
    func open(
        store: String, artifacts: ArtifactStore, registry: PrometheusCollectorRegistry, instance: String? = nil
    ) async throws -> RequestLog? {
        guard !noRequestLog else { return nil }
        guard logSegmentMB > 0 else { throw CLIError("--log-segment-mb must be at least 1, got \(logSegmentMB)") }
        guard (0...1000).contains(logGroupMs) else { throw CLIError("--log-group-ms must be in 0...1000, got \(logGroupMs)") }
        guard (1...60_000).contains(logCommitMs) else { throw CLIError("--log-commit-ms must be in 1...60000, got \(logCommitMs)") }
        guard (0...60_000).contains(logSyncMs) else { throw CLIError("--log-sync-ms must be in 0...60000, got \(logSyncMs)") }
        guard (0...19).contains(logNice) else { throw CLIError("--log-nice must be in 0...19, got \(logNice)") }
        guard (0...60_000).contains(logMaxLagMs) else { throw CLIError("--log-max-lag-ms must be in 0...60000, got \(logMaxLagMs)") }
        guard Self.zstdLevels.contains(where: { $0.contains(logZstdLevel) }) else {
            throw CLIError("--log-zstd-level must be in 1...19 or -7...-1, got \(logZstdLevel)")
        }
        let retention: Duration? = logRetention.lowercased() == "forever"
            ? nil : try parseDuration(logRetention, option: "--log-retention")
        let configuration = RequestLogConfiguration(
            archiveDirectory: RequestLogConfiguration.archiveDirectory(inStore: store)
                + (instance.map { "-" + $0 } ?? ""), retention: retention, segmentMaxBytes: logSegmentMB << 20,
            segmentMaxAge: try parseDuration(logSegmentAge, option: "--log-segment-age"),
            commitInterval: .milliseconds(logCommitMs), syncInterval: .milliseconds(logSyncMs),
            compressionLevel: logZstdLevel, groupWindow: .milliseconds(logGroupMs), backgroundNice: logNice,
            maxAppendLag: logMaxLagMs > 0 ? .milliseconds(logMaxLagMs) : nil)
        let guestbook = try await location.openGuestbook(store: store, create: true, backgroundNice: logNice)
        do {
            return try RequestLog(
                configuration: configuration, guestbook: guestbook, store: artifacts, registry: registry,
                logger: Logger(label: "loupe.requestlog"))
        } catch {
            await guestbook.close()
            throw CLIError("request log: \(error)")
        }
    }
}
