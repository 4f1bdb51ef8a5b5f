import ArgumentParser
import Catalog
import Foundation
import ModelImport
import TreeInference
import TreeModel

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Register a LightGBM or XGBoost model as a version of a Loupe model.",
        discussion: """
            Reads LightGBM's text model (save_model, model.txt) or XGBoost's JSON model \
            (save_model("model.json")), keeps each library's split rules (LightGBM: <= in double, \
            missing types None/Zero/NaN, categorical bitsets; XGBoost: < in float32, default \
            directions, categories, base_score, float32 sums), so raw scores equal the library's. \
            The features must be the nine diamond columns (by name, or nine unnamed ones in \
            Loupe's order) with grades encoded as Loupe does. --target says what the raw score \
            is: log-price (price = exp(raw), the default) or price. Price ranges are calibrated on \
            the dataset's holdout (the rows `loupe train` holds out); they are honest only if \
            the model was not trained on those rows.
            Example:
              loupe import lightgbm model.txt --promote
            """)

    enum Library: String, ExpressibleByArgument, CaseIterable {
        case lightgbm, xgboost
    }

    @Argument(help: "lightgbm or xgboost.") var library: Library
    @Argument(help: "The model file.") var file: String

    @Option(help: "What the raw score is: log-price (price = exp(raw)) or price.")
    var target: String = TargetTransform.logPrice.name

    @Option(help: "The model name to register the new version under.")
    var model: String = Catalog.defaultModel

    @Option(help: "The dataset whose holdout rows calibrate the price ranges.")
    var dataset: String = Catalog.defaultDataset

    @Flag(help: "Promote the new version to production.")
    var promote = false

    @Option(name: .shortAndLong, help: "Also write the Loupe model file here.")
    var out: String?

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard TargetTransform(name: target) != nil else { throw ValidationError("--target must be log-price or price, got \(target)") }
    }

    func run() throws {
        let transform = TargetTransform(name: target)!
        let bytes = try readFile(file)
        let parsed: Ensemble
        do throws(ImportError) {
            switch library {
            case .lightgbm: parsed = try LightGBMImporter.ensemble(text: String(decoding: bytes, as: UTF8.self), target: transform)
            case .xgboost: parsed = try XGBoostImporter.ensemble(json: Data(bytes), target: transform)
            }
        } catch { throw CLIError("\(file): \(error.message)") }
        let conformed: Ensemble
        do throws(ImportError) { conformed = try DiamondFeatureMapping.conform(parsed) } catch { throw CLIError("\(file): \(error.message)") }
        let catalog = try storeOptions.catalog()
        let datasetVersion = try oneLine("dataset \(dataset)") { try catalog.latestDataset(dataset) }
        let imported = try oneLine("store \(storeOptions.location)") {
            try catalog.registerImported(
                conformed, name: model, dataset: datasetVersion, library: library.rawValue, source: file)
        }
        if promote {
            _ = try oneLine("store \(storeOptions.location)") {
                try catalog.promote(name: model, version: imported.manifest.version, reason: "loupe import --promote")
            }
        }
        if let out { try writeFile(out, imported.model.serialized()) }
        let compiled = try? CompiledEnsemble(imported.model)
        let engine = compiled.map { c in
            c.genericReason.map { "reference walk (\($0))" } ?? "compiled \(c.layout.map { "\($0)" } ?? "") \(c.kernelPath.rawValue) kernels"
        } ?? "reference walk"
        print("imported \(library.rawValue) \(file): \(imported.model.trees.count) trees, target \(transform.name)")
        print("saved: model \(model) v\(imported.manifest.version)\(promote ? " (production)" : "") in \(storeOptions.location)"
            + (out.map { ", and \($0)" } ?? ""))
        print("scored by: \(engine)")
        print("holdout (\(imported.calibrationRows) rows of \(dataset) v\(datasetVersion.version), calibrating the ranges):")
        print(imported.holdout.table().split(separator: "\n", omittingEmptySubsequences: false).prefix(2).joined(separator: "\n"))
    }
}
