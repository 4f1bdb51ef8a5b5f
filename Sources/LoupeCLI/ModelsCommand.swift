import ArgumentParser
import LoupeProtocol
import SwiftProtobuf
import ArtifactStore
import Catalog
import Retraining
import Foundation

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, inspect, promote and roll back model versions in the store.",
        subcommands: [List.self, Show.self, Promote.self, Rollback.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version with its metrics, dataset and aliases.")

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions

        @OptionGroup var serverOptions: ServerOptions

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
            if json {
                print(encodeJSON(ModelListing(versions: versions, aliases: aliases)))
                return
            }
            guard !versions.isEmpty else {
                print("no versions of model \(model) in \(storeOptions.location); train one with `loupe train`")
                return
            }
            print(pad("version", 9) + pad("created (UTC)", 22) + pad("dataset", 16) + pad("trees", 7)
                + pad("RMSE", 9) + pad("MAPE", 8) + pad("cover", 8) + "aliases")
            for m in versions {
                let tags = ModelAlias.allCases.filter { aliases[$0] == m.version }.map(\.rawValue)
                print(pad("\(m.version)", 9) + pad(timestamp(m.created), 22) + pad("\(m.dataset)", 16)
                    + pad(m.metrics["trees"].map { "\(Int($0))" } ?? "-", 7)
                    + pad(m.metrics["rmse"].map { format($0, 1) } ?? "-", 9)
                    + pad(m.metrics["mape"].map { format($0, 2) + "%" } ?? "-", 8)
                    + pad(m.metrics["coverage"].map { format($0 * 100, 1) + "%" } ?? "-", 8)
                    + tags.joined(separator: ","))
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
        static let configuration = CommandConfiguration(abstract: "Point production (or staging) at a version.")

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
            guard let alias = ModelAlias(rawValue: to) else { throw CLIError("--to must be production or staging, got \"\(to)\"") }
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

struct ModelListing: Encodable {
    var versions: [ModelManifest]
    var aliases: AliasRecord
}

/// Parses a model spec, with a one-line error.
func parseSpec(_ text: String) throws -> ModelSpec {
    if let version = Int(text), version > 0 { return ModelSpec(selector: .version(version)) }
    guard let spec = ModelSpec(parsing: text) else {
        throw CLIError("\"\(text)\" is not a model: expected NAME, NAME@production, NAME@staging or NAME@VERSION")
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
