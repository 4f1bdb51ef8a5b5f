import ArgumentParser
import LoupeProtocol
import SwiftProtobuf
import ArtifactStore
import Catalog
import Retraining
import Foundation
import LiveAccuracy

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, inspect, promote and roll back model versions; run a shadow or a canary beside production.",
        subcommands: [List.self, Show.self, Promote.self, Rollback.self, Shadow.self, Canary.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version with its metrics, dataset and aliases.")

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions

        @OptionGroup var serverOptions: ServerOptions

        @OptionGroup(title: "Live accuracy (from the request log's outcomes)")
        var logOptions: RequestLogOptions

        func run() async throws {
            if let client = try await serverOptions.connect(store: storeOptions) {
                let response: Loupe_V1_ListModelsResponse
                do { response = try await client.listModels(name: model) } catch { throw CLIError(error.oneLine) }
                await client.close()
                if json {
                    print((try? response.jsonString()) ?? "{}")
                    return
                }
                print(pad("version", 9) + pad("created (UTC)", 22) + pad("dataset", 16) + pad("trees", 7)
                    + pad("RMSE", 9) + pad("MAPE", 8) + pad("cover", 8) + "aliases")
                for m in response.models {
                    let created = Date(timeIntervalSince1970: Double(m.createdUnixMs) / 1000)
                    print(pad("\(m.version)", 9) + pad(timestamp(created), 22) + pad("\(m.dataset)@\(m.datasetVersion)", 16)
                        + pad("\(m.treeCount)", 7) + pad(format(m.metrics.rmse, 1), 9)
                        + pad(format(m.metrics.mape, 2) + "%", 8) + pad(format(m.metrics.coverage * 100, 1) + "%", 8)
                        + m.aliases.joined(separator: ","))
                }
                return
            }
            let catalog = try storeOptions.readOnlyCatalog()
            let (versions, aliases) = try oneLine("model \(model)") {
                (try catalog.store.models(name: model), try catalog.store.aliases(name: model))
            }
            let live = await liveAccuracy(model: model, store: storeOptions.path, log: logOptions)
            if json {
                print(encodeJSON(ModelListing(versions: versions, aliases: aliases, live: live.map { Array($0.values) }
                    .map { $0.sorted { $0.version < $1.version } })))
                return
            }
            guard !versions.isEmpty else {
                print("no versions of model \(model) in \(storeOptions.location); train one with `loupe train`")
                return
            }
            // Holdout figures from training; live ones from realised prices (`loupe outcomes ingest`).
            print(pad("version", 9) + pad("created (UTC)", 22) + pad("dataset", 16) + pad("trees", 7)
                + pad("RMSE", 9) + pad("MAPE", 8) + pad("cover", 8)
                + (live == nil ? "" : pad("live n", 8) + pad("live RMSE", 11) + pad("MAPE", 8) + pad("cover", 8)) + "aliases")
            for m in versions {
                var tags = ModelAlias.allCases.filter { aliases[$0] == m.version }.map(\.rawValue)
                if aliases.canary == m.version, let percent = aliases.canaryPercent, let i = tags.firstIndex(of: "canary") {
                    tags[i] = "canary(\(percent)%)"
                }
                var liveColumns = ""
                if let live {
                    let a = live[m.version]
                    liveColumns = pad(a.map { "\($0.outcomes)" } ?? "-", 8) + pad(a.map { format($0.rmse, 1) } ?? "-", 11)
                        + pad(a.map { format($0.mape, 2) + "%" } ?? "-", 8)
                        + pad(a?.coverage.map { format($0 * 100, 1) + "%" } ?? "-", 8)
                }
                print(pad("\(m.version)", 9) + pad(timestamp(m.created), 22) + pad("\(m.dataset)", 16)
                    + pad(m.metrics["trees"].map { "\(Int($0))" } ?? "-", 7)
                    + pad(m.metrics["rmse"].map { format($0, 1) } ?? "-", 9)
                    + pad(m.metrics["mape"].map { format($0, 2) + "%" } ?? "-", 8)
                    + pad(m.metrics["coverage"].map { format($0 * 100, 1) + "%" } ?? "-", 8)
                    + liveColumns + tags.joined(separator: ","))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One version's manifest: lineage, parameters, metrics, and the retrain decision that made it.",
            discussion: """
                A version a retrain made carries `retrain` beside the manifest's fields: whether it was \
                promoted and why (the comparison, the guardrails, any override), the new rows it \
                trained on, the reference set and the label outliers set aside.
                """)

        @Argument(help: "NAME@VERSION, NAME@production, a version number, … (default: the current model).")
        var spec: String = Catalog.defaultModel

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            let spec = try parseSpec(spec)
            let manifest = try oneLine("model \(spec)") { try catalog.manifest(for: spec) }
            guard let outcome = catalog.retrainOutcome(model: manifest.name, version: manifest.version),
                var object = try? JSONSerialization.jsonObject(with: Data(encodeJSON(manifest).utf8)) as? [String: Any],
                let decision = try? JSONSerialization.jsonObject(with: Data(encodeJSON(outcome).utf8))
            else {
                print(encodeJSON(manifest))
                return
            }
            object["retrain"] = decision
            let merged = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: merged, as: UTF8.self))
        }
    }

    struct Promote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Point production (or staging) at a version.",
            discussion: "Promoting the version a canary or shadow runs ends that rollout.")

        @Argument(help: "The version to promote.")
        var version: Int

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Option(help: "production or staging.")
        var to: String = ModelAlias.production.rawValue

        @Option(help: "Why (kept in the alias history).")
        var reason: String?

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            guard let alias = ModelAlias(rawValue: to), alias == .production || alias == .staging else {
                throw CLIError("--to must be production or staging, got \"\(to)\" (`loupe models canary|shadow` start those)")
            }
            let catalog = try storeOptions.catalog()
            let record = try oneLine("model \(model)") {
                try catalog.promote(name: model, version: version, to: alias, reason: reason)
            }
            print("\(model) \(alias) → v\(record[alias] ?? version)")
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move production back to the version it pointed to before.")

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Option(help: "Why (kept in the alias history).")
        var reason: String?

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.catalog()
            let before = try oneLine("model \(model)") { try catalog.store.aliases(name: model).production }
            let record = try oneLine("model \(model)") { try catalog.rollback(name: model, reason: reason) }
            print("\(model) production: v\(before.map(String.init) ?? "-") → v\(record.production.map(String.init) ?? "-")")
        }
    }
}

extension ModelsCommand {
    struct Shadow: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score live traffic with a version beside production; partners still get production's answers.",
            discussion: """
                Servers start within a second (their alias poll). Each call production answers is scored                 again by the shadow on a background thread, its answer logged in the request log's                 shadow table and compared in loupe_shadow_median_relative_difference. `--stop` ends it.
                """)

        @Argument(help: "The version to run in shadow.")
        var version: Int?

        @Flag(help: "End the shadow.")
        var stop = false

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Option(help: "Why (kept in the alias history).")
        var reason: String?

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            guard (version == nil) == stop else { throw ValidationError("give a VERSION to shadow, or --stop (not both)") }
        }

        func run() throws {
            let catalog = try storeOptions.catalog()
            if stop {
                let ended = try endRollout(catalog, model: model, alias: .shadow, reason: reason)
                print("\(model) shadow v\(ended) ended")
                return
            }
            let record = try oneLine("model \(model)") {
                try catalog.promote(name: model, version: version!, to: .shadow, reason: reason)
            }
            print("\(model) shadow → v\(record.shadow ?? version!) (production v\(record.production.map(String.init) ?? "-") answers)")
        }
    }

    struct Canary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer a share of partners from a version; the rest stay on production.",
            discussion: """
                Sticky per partner: a partner's calls all go to one version, and raising --percent only adds                 partners. Promote the canary (`loupe models promote N`) to finish, or `--stop` to end it.                 `loupe serve` rolls a canary back by itself when it does worse than production (see                 docs/OPERATIONS.md, "Shadow, canary and automatic rollback").
                """)

        @Argument(help: "The version to run as the canary.")
        var version: Int?

        @Option(parsing: .unconditional, help: "The share of partners it answers, 1 to 100.")
        var percent: Int?

        @Flag(help: "End the canary.")
        var stop = false

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Option(help: "Why (kept in the alias history).")
        var reason: String?

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            guard (version == nil) == stop else { throw ValidationError("give a VERSION for the canary, or --stop (not both)") }
            if let percent, !(1...100).contains(percent) {
                throw ValidationError("--percent must be from 1 to 100, got \(percent)")
            }
            if stop, percent != nil { throw ValidationError("--percent does not go with --stop") }
        }

        func run() throws {
            let catalog = try storeOptions.catalog()
            if stop {
                let ended = try endRollout(catalog, model: model, alias: .canary, reason: reason)
                print("\(model) canary v\(ended) ended; production answers every partner")
                return
            }
            let record = try oneLine("model \(model)") {
                try catalog.promote(name: model, version: version!, to: .canary, reason: reason, percent: percent)
            }
            print("\(model) canary → v\(record.canary ?? version!) for \(record.canaryPercent ?? 0)% of partners "
                + "(production v\(record.production.map(String.init) ?? "-") answers the rest)")
        }
    }
}

/// Ends a canary or shadow; returns the version it ran (as text, "-" if unknown).
private func endRollout(_ catalog: Catalog, model: String, alias: ModelAlias, reason: String?) throws -> String {
    try oneLine("model \(model)") {
        let version = try catalog.store.aliases(name: model)[alias]
        try catalog.endRollout(name: model, alias: alias, reason: reason)
        return version.map(String.init) ?? "-"
    }
}

struct ModelListing: Encodable {
    var versions: [ModelManifest]
    var aliases: AliasRecord
    /// Live accuracy per version, when the request log holds outcomes.
    var live: [VersionAccuracy]?
}

/// Each version's live accuracy from the request log's outcomes; nil when there is no request
/// log or it holds no outcomes (the listing then shows the holdout figures only).
func liveAccuracy(model: String, store: String, log: RequestLogOptions) async -> [Int: VersionAccuracy]? {
    guard let guestbook = try? await log.openGuestbook(store: store) else { return nil }
    let scores = try? await guestbook.outcomeScores(model: model, since: nil)
    await guestbook.close()
    guard let scores, !scores.isEmpty else { return nil }
    return LiveAccuracy.byVersion(scores)
}

/// Parses a model spec, with a one-line error.
func parseSpec(_ text: String) throws -> ModelSpec {
    if let version = Int(text), version > 0 { return ModelSpec(selector: .version(version)) }
    guard let spec = ModelSpec(parsing: text) else {
        throw CLIError("\"\(text)\" is not a model: expected NAME, NAME@ALIAS (production, staging, canary, shadow) or NAME@VERSION")
    }
    return spec
}

/// "2026-11-27 05:03:55".
func timestamp(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
    return formatter.string(from: date)
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
