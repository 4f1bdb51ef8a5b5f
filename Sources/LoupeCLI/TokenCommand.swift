import ArgumentParser
import Foundation
import TokenStore

/// `--tokens`: where partner tokens live.
struct TokenStoreOptions: ParsableArguments {
    @Option(help: """
        The token store: a SQLite file, or postgres://user:password@host:port/database \
        (default: $LOUPE_TOKENS, else <store>/tokens.sqlite).
        """)
    var tokens: String?

    /// The location used, given the artifact store directory.
    func location(store: String) -> String {
        tokens ?? ProcessInfo.processInfo.environment["LOUPE_TOKENS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? store + "/tokens.sqlite"
    }

    func open(store: String) async throws -> any TokenStore {
        let location = location(store: store)
        do {
            return try await openTokenStore(location)
        } catch {
            throw CLIError("token store: \(error)")
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list, show, revoke and rotate partner tokens (checked by the gateway).",
        discussion: """
            A token is shown once, when it is created or rotated; only the SHA-256 of its secret \
            is stored. Running gateways see a revocation or rotation within a second.
            """,
        subcommands: [Create.self, List.self, Show.self, Revoke.self, Rotate.self, Audit.self],
        defaultSubcommand: List.self)

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print it (once).")

        @Option(help: "Whom it is for (the principal its calls run as), e.g. acme.")
        var name: String

        @Option(name: .customLong("scope"), help: "A scope: predict, models:read or admin (repeat for several).")
        var scopes: [String] = ["predict"]

        @Option(parsing: .unconditional, help: "Calls per second (0: unlimited).")
        var callsPerSecond: Double = RateLimits().callsPerSecond

        @Option(parsing: .unconditional, help: "Calls allowed at once before the rate applies (default: 2 s of calls).")
        var callBurst: Double?

        @Option(parsing: .unconditional, help: "Rows per second; a BatchPredict counts its rows, other calls 1 (0: unlimited).")
        var rowsPerSecond: Double = RateLimits().rowsPerSecond

        @Option(parsing: .unconditional, help: "Rows allowed at once, also the largest call (default: 2 s of rows).")
        var rowBurst: Double?

        @Option(parsing: .unconditional, help: "Rows per UTC day (default: no quota).")
        var dailyQuota: Int64?

        @Option(help: "Expire after this long: 90d, 12h, 30m, 45s (default: never).")
        var expiresIn: String?

        @Option(help: "A note kept with the token.")
        var note: String = ""

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            let limits = RateLimits(
                callsPerSecond: callsPerSecond, callBurst: callBurst ?? 2 * callsPerSecond, rowsPerSecond: rowsPerSecond,
                rowBurst: rowBurst ?? 2 * rowsPerSecond, dailyRowQuota: dailyQuota)
            let expiry = try expiresIn.map { Date().addingTimeInterval(try parseDuration($0)) }
            let issued: IssuedToken
            do {
                issued = try await store.create(
                    TokenSpec(name: name, scopes: scopes, limits: limits, expiresAt: expiry, note: note))
            } catch {
                throw CLIError("\(error)")
            }
            print("""
                Created token \(issued.record.id) for \(name) (scopes: \(issued.record.scopes.joined(separator: ", "))).
                It is shown once; only its hash is stored. Give it to the partner now:

                  \(issued.token.rawValue)

                """)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every token: id, name, scopes, limits, state.")

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            let records: [TokenRecord]
            do { records = try await store.records() } catch { throw CLIError("\(error)") }
            if json {
                print(encodeJSON(records.map(TokenListing.init)))
                return
            }
            guard !records.isEmpty else {
                print("no tokens yet; create one with `loupe token create --name PARTNER`")
                return
            }
            let now = Date()
            print(pad("id", 14) + pad("name", 16) + pad("scopes", 26) + pad("calls/s", 10) + pad("rows/s", 12)
                + pad("daily quota", 13) + pad("expires (UTC)", 22) + "state")
            for r in records {
                print(pad(r.id, 14) + pad(r.name, 16) + pad(r.scopes.joined(separator: ","), 26)
                    + pad(rate(r.limits.callsPerSecond), 10) + pad(rate(r.limits.rowsPerSecond), 12)
                    + pad(r.limits.dailyRowQuota.map { "\($0)" } ?? "-", 13)
                    + pad(r.expiresAt.map(timestamp) ?? "never", 22) + r.state(at: now).rawValue)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One token's record (never its secret).")

        @Argument(help: "The token's id (the part after loupe_).")
        var id: String

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            guard let record = try await store.record(id: id) else {
                throw CLIError("no token with id \(id); see `loupe token list`")
            }
            let usage = (try? await store.addUsage([:], day: utcDay(Date())))?[id] ?? 0
            var listing = TokenListing(record)
            listing.rowsToday = usage
            print(encodeJSON(listing))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token: running gateways refuse it (and close its connections) within a second.")

        @Argument(help: "The token's id.")
        var id: String

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            do {
                let record = try await store.revoke(id: id, at: Date())
                print("revoked token \(record.id) of \(record.name)")
            } catch {
                throw CLIError("\(error)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a token by a new one; the old one keeps working for the grace period.")

        @Argument(help: "The token's id.")
        var id: String

        @Option(help: "How long the old token keeps working: 24h, 30m, 0s (default 24h).")
        var grace: String = "24h"

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            let seconds = try parseDuration(grace)
            do {
                let issued = try await store.rotate(id: id, grace: seconds)
                print("""
                    Rotated token \(id) of \(issued.record.name): the old one works until \
                    \(timestamp(Date().addingTimeInterval(seconds))) UTC.
                    The new token \(issued.record.id) is shown once; only its hash is stored:

                      \(issued.token.rawValue)

                    """)
            } catch {
                throw CLIError("\(error)")
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refused and failed attempts the gateways recorded, newest first.")

        @Option(parsing: .unconditional, help: "How many.")
        var limit: Int = 50

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var tokenOptions: TokenStoreOptions

        func run() async throws {
            let store = try await tokenOptions.open(store: storeOptions.path)
            defer { Task { await store.close() } }
            let events = try await store.auditEvents(limit: limit)
            print(pad("at (UTC)", 22) + pad("event", 22) + pad("token", 14) + pad("principal", 14) + pad("count", 7)
                + pad("remote", 17) + "detail")
            for e in events {
                print(pad(timestamp(e.at), 22) + pad(e.event, 22) + pad(e.tokenID ?? "-", 14) + pad(e.principal ?? "-", 14)
                    + pad("\(e.count)", 7) + pad(e.remote ?? "-", 17) + e.detail)
            }
        }
    }
}

/// A token's record as `list --json` and `show` print it (the secret's hash is left out too).
struct TokenListing: Encodable {
    var id: String
    var name: String
    var scopes: [String]
    var limits: RateLimits
    var created: Date
    var expires: Date?
    var revoked: Date?
    var rotatedTo: String?
    var rotatedFrom: String?
    var state: String
    var note: String
    var rowsToday: Int64?

    init(_ r: TokenRecord) {
        id = r.id
        name = r.name
        scopes = r.scopes
        limits = r.limits
        created = r.createdAt
        expires = r.expiresAt
        revoked = r.revokedAt
        rotatedTo = r.rotatedTo
        rotatedFrom = r.rotatedFrom
        state = r.state(at: Date()).rawValue
        note = r.note
    }
}

private func rate(_ value: Double) -> String {
    value <= 0 ? "unlimited" : value == value.rounded() ? "\(Int64(value))" : "\(value)"
}

/// `90d`, `12h`, `30m`, `45s`, or plain seconds.
func parseDuration(_ text: String) throws -> TimeInterval {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    if let unit = text.last, let scale = units[unit], let value = Double(text.dropLast()), value >= 0 {
        return value * scale
    }
    if let value = Double(text), value >= 0 { return value }
    throw CLIError("a duration looks like 90d, 12h, 30m or 45s, got \"\(text)\"")
}
