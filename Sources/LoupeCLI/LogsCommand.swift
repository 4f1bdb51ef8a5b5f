import ArgumentParser
import Catalog
import Foundation
import LoupeProtocol
import LoupeUtilities
import RequestLog
import SwiftProtobuf

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Read the request log: recent calls, statistics, and full requests and responses from the payload archive.",
        discussion: """
            `loupe serve` records every call: a guestbook row (time, principal, method, model, \
            rows, latency, status; for Predict the diamond and the price given) in \
            <store>/requests.sqlite or the --log-db PostgreSQL database, and the full request and \
            response in the payload archive (segments sealed into the store). These commands read \
            both while the server runs.
            """,
        subcommands: [Query.self, Stats.self, Export.self],
        defaultSubcommand: Query.self)

    struct Filter: ParsableArguments {
        @Option(help: "Calls since this long ago (e.g. 90s, 15m, 1h, 2d) or since an ISO 8601 time.")
        var since: String?

        @Option(help: "Only calls made for this principal (the partner).")
        var principal: String?

        @Option(help: "Only this method: Hello (a second one on a connection), Health, Predict, BatchPredict, FindSimilar, ListModels, Retrain, GetJob.")
        var method: String?

        @Option(help: "Only this status (OK, INVALID_ARGUMENT, …) or \"error\" for every failed call.")
        var status: String?

        func query(limit: Int) throws -> GuestbookQuery {
            var query = GuestbookQuery(limit: limit)
            query.since = try since.map { try parseTime($0, option: "--since") }
            query.principal = principal
            query.method = try method.map { name in try oneLine { try LoggedMethods.validate(name) } }
            if let status {
                let names = StatusCode.allCases.map(\.description)
                guard status.lowercased() == "error" || names.contains(status.uppercased()) else {
                    throw CLIError("unknown status \"\(status)\"; expected error or one of \(names.joined(separator: ", "))")
                }
                query.status = status.lowercased() == "error" ? "error" : status.uppercased()
            }
            return query
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recent calls, newest first, as a table or JSON.")

        @OptionGroup var filter: Filter

        @Option(parsing: .unconditional, help: "At most this many calls.")
        var limit: Int = 50

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logOptions: RequestLogOptions

        func run() async throws {
            guard limit > 0 else { throw CLIError("--limit must be at least 1, got \(limit)") }
            let query = try filter.query(limit: limit)
            let guestbook = try await logOptions.openGuestbook(store: storeOptions.path)
            let rows: [GuestbookRow]
            do { rows = try await guestbook.rows(query) } catch {
                await guestbook.close()
                throw CLIError("\(error)")
            }
            await guestbook.close()
            if json {
                print(encodeJSON(rows.map(RowListing.init)))
                return
            }
            guard !rows.isEmpty else {
                print("no calls recorded\(query.since == nil ? "" : " in that time") (the request log is in \(logOptions.location(store: storeOptions.path)))")
                return
            }
            print(pad("time (UTC)", 24) + pad("principal", 16) + pad("method", 13) + pad("model", 14) + pad("rows", 8)
                + pad("latency", 11) + pad("status", 18) + "detail")
            for r in rows {
                let model = r.modelName.map { "\($0) v\(r.modelVersion ?? 0)" } ?? "-"
                var detail = r.error ?? ""
                if let d = r.diamond, let price = r.price {
                    detail = "\(d.carat) ct \(d.cut) \(d.color) \(d.clarity) → \(format(price, 0))"
                        + (r.low.map { " [\(format($0, 0))–\(format(r.high ?? 0, 0))]" } ?? "")
                }
                print(pad(timestampMillis(r.at), 24) + pad(r.principal, 16) + pad(r.method, 13) + pad(model, 14)
                    + pad("\(r.rows)", 8) + pad(latency(r.latencyMicroseconds), 11) + pad(r.status, 18) + detail)
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Calls per method and principal, error rate, latency percentiles, rows scored.")

        @OptionGroup var filter: Filter

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logOptions: RequestLogOptions

        func run() async throws {
            let query = try filter.query(limit: 0)
            let guestbook = try await logOptions.openGuestbook(store: storeOptions.path)
            let stats: GuestbookStats
            do { stats = try await guestbook.stats(query) } catch {
                await guestbook.close()
                throw CLIError("\(error)")
            }
            await guestbook.close()
            if json {
                print(encodeJSON(stats))
                return
            }
            print("calls \(stats.calls), errors \(stats.errors) (\(format(stats.errorRate * 100, 2))%), rows scored \(stats.rowsScored)")
            if stats.calls > 0 {
                print("latency p50 \(latency(stats.p50Microseconds ?? 0)), p90 \(latency(stats.p90Microseconds ?? 0)), "
                    + "p99 \(latency(stats.p99Microseconds ?? 0)), max \(latency(stats.maxMicroseconds ?? 0))")
            }
            for (title, groups) in [("method", stats.byMethod), ("principal", stats.byPrincipal)] where !groups.isEmpty {
                print("")
                print(pad(title, 18) + pad("calls", 10) + pad("errors", 10) + "rows")
                for g in groups { print(pad(g.key, 18) + pad("\(g.calls)", 10) + pad("\(g.errors)", 10) + "\(g.rows)") }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Full requests and responses from the payload archive, one JSON object per line.",
            discussion: """
                Reads the sealed segments in the store whose time range meets [--from, --to), then \
                the segment still open under <store>/capsule. Payloads are printed as protobuf JSON \
                (--raw: base64 of the bytes). A damaged segment is reported on stderr (the records \
                before the damage are exported) and the exit code is 2.
                """)

        @Option(help: "Calls at or after this time: ISO 8601 (2026-11-27T08:00:00Z) or a duration ago (1h).")
        var from: String?

        @Option(help: "Calls before this time (same forms; default now).")
        var to: String?

        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
        var output: String?

        @Flag(help: "Payloads as base64 of the protobuf bytes instead of protobuf JSON.")
        var raw = false

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let lower = try from.map { try parseTime($0, option: "--from") }
            let upper = try to.map { try parseTime($0, option: "--to") }
            if let lower, let upper, lower >= upper { throw CLIError("--from must be before --to") }
            let catalog = try storeOptions.catalog()
            var sink: FileHandle = .standardOutput
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) , let handle = FileHandle(forWritingAtPath: output) else {
                    throw CLIError("cannot write \(output)")
                }
                sink = handle
            }
            var count = 0
            let damage = try oneLine("export") {
                try PayloadArchiveReader.export(
                    store: catalog.store, directory: RequestLogConfiguration.archiveDirectory(inStore: storeOptions.path), from: lower, to: upper
                ) { record in
                    sink.write(Data((exportLine(record, raw: raw) + "\n").utf8))
                    count += 1
                }
            }
            if output != nil { try? sink.close() }
            FileHandle.standardError.write(Data("exported \(count) calls\n".utf8))
            if !damage.isEmpty {
                for d in damage { FileHandle.standardError.write(Data("damaged segment: \(d)\n".utf8)) }
                throw ExitCode(2)
            }
        }
    }
}

/// A guestbook row as `loupe logs query --json` prints it.
struct RowListing: Encodable {
    var row: GuestbookRow
    init(_ row: GuestbookRow) { self.row = row }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        let r = row
        try c.encode(r.id, forKey: Key("id"))
        try c.encode(isoTimestampMillis(r.at), forKey: Key("time"))
        try c.encode(r.requestID, forKey: Key("request_id"))
        try c.encode(r.principal, forKey: Key("principal"))
        try c.encodeIfPresent(r.tokenID, forKey: Key("token_id"))
        try c.encode(r.method, forKey: Key("method"))
        try c.encodeIfPresent(r.modelName, forKey: Key("model"))
        try c.encodeIfPresent(r.modelVersion, forKey: Key("model_version"))
        try c.encode(r.rows, forKey: Key("rows"))
        try c.encode(r.latencyMicroseconds, forKey: Key("latency_us"))
        try c.encode(r.status, forKey: Key("status"))
        try c.encodeIfPresent(r.error, forKey: Key("error"))
        try c.encodeIfPresent(r.diamond, forKey: Key("diamond"))
        try c.encodeIfPresent(r.price, forKey: Key("price"))
        try c.encodeIfPresent(r.low, forKey: Key("low"))
        try c.encodeIfPresent(r.high, forKey: Key("high"))
        try c.encodeIfPresent(r.level, forKey: Key("level"))
    }

    struct Key: CodingKey {
        var stringValue: String
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

/// One exported call: the row's fields plus `request` and `response`.
func exportLine(_ record: ArchivedCall, raw: Bool) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var line = String(decoding: (try? encoder.encode(RowListing(record.row))) ?? Data("{}".utf8), as: UTF8.self)
    line.removeLast()  // "}"
    func payload(_ bytes: [UInt8], request: Bool) -> String {
        if !raw, let json = protobufJSON(bytes, method: record.row.method, request: request, error: !request && record.responseIsError) {
            return json
        }
        return "\"" + Data(bytes).base64EncodedString() + "\""
    }
    line += ",\"request\":\(payload(record.request, request: true)),\"response\":\(payload(record.response, request: false))}"
    return line
}

private func protobufJSON(_ bytes: [UInt8], method: String, request: Bool, error: Bool) -> String? {
    let type: any SwiftProtobuf.Message.Type
    switch (method, request) {
    case _ where error: type = Loupe_V1_Status.self
    case ("Predict", true): type = Loupe_V1_PredictRequest.self
    case ("Predict", false): type = Loupe_V1_PredictResponse.self
    case ("BatchPredict", true): type = Loupe_V1_BatchPredictRequest.self
    case ("BatchPredict", false): type = Loupe_V1_BatchPredictResponse.self
    case ("FindSimilar", true): type = Loupe_V1_FindSimilarRequest.self
    case ("FindSimilar", false): type = Loupe_V1_FindSimilarResponse.self
    case ("ListModels", true): type = Loupe_V1_ListModelsRequest.self
    case ("ListModels", false): type = Loupe_V1_ListModelsResponse.self
    case ("Retrain", true): type = Loupe_V1_RetrainRequest.self
    case ("Retrain", false): type = Loupe_V1_RetrainResponse.self
    case ("GetJob", true): type = Loupe_V1_GetJobRequest.self
    case ("GetJob", false): type = Loupe_V1_GetJobResponse.self
    case ("Health", true): type = Loupe_V1_HealthRequest.self
    case ("Health", false): type = Loupe_V1_HealthResponse.self
    default: return nil
    }
    guard let message = try? type.init(serializedBytes: bytes), let json = try? message.jsonString() else { return nil }
    return json
}

/// A time on the command line: ISO 8601, or a duration ago ("1h" = an hour ago), or "now".
func parseTime(_ text: String, option: String) throws -> Date {
    let t = text.trimmingCharacters(in: .whitespaces)
    if t.lowercased() == "now" { return Date() }
    let iso = ISO8601DateFormatter()
    if let date = iso.date(from: t) { return date }
    iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = iso.date(from: t) { return date }
    iso.formatOptions = [.withFullDate]
    if let date = iso.date(from: t) { return date }
    do {
        let ago = try parseDuration(t, option: option)
        return Date().addingTimeInterval(-ago.seconds)
    } catch {
        throw CLIError("\(option) must be a duration ago like 90s, 15m, 1h or 2d, or an ISO 8601 time like "
            + "2026-11-27T08:00:00Z, got \"\(text)\"")
    }
}

/// "2026-11-27 08:00:01.234".
func timestampMillis(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
    return formatter.string(from: date)
}

/// "2026-11-27T08:00:01.234Z": for JSON, where a reader must not have to guess the zone.
func isoTimestampMillis(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}

/// "850 µs", "12.3 ms", "1.20 s".
func latency(_ microseconds: Int64) -> String {
    let us = Double(microseconds)
    if us < 1000 { return "\(microseconds) µs" }
    if us < 1_000_000 { return format(us / 1000, us < 10_000 ? 1 : 0) + " ms" }
    return format(us / 1_000_000, 2) + " s"
}
