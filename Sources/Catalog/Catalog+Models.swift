import ArtifactStore
import Foundation
import TreeModel
import TreeTraining

extension Catalog {
    /// Registers a trained model as the next version of `name`, with its lineage: the dataset
    /// version, the parameters, the holdout metrics and the full training report.
    @discardableResult
    public func register(
        _ trained: TrainedModel, name: String = Catalog.defaultModel, dataset: DatasetReference, note: String? = nil
    ) throws -> ModelManifest {
        let parent = try store.latestModel(name: name)?.version
        return try store.putModel(
            name: name, modelBytes: trained.model.serialized(), dataset: dataset,
            hyperparameters: try Self.json(trained.report.configuration),
            metrics: Self.metrics(of: trained), reportJSON: Array(trained.report.json().utf8),
            parent: parent, note: note)
    }

    /// The manifest a spec points to.
    public func manifest(for spec: ModelSpec) throws -> ModelManifest {
        switch spec.selector {
        case .version(let version):
            return try store.model(name: spec.name, version: version)
        case .alias(let alias):
            guard let manifest = try store.model(name: spec.name, alias: alias) else {
                throw CatalogError("model \"\(spec.name)\" has no \(alias) version; promote one with `loupe models promote VERSION`")
            }
            return manifest
        case .current:
            if let production = try store.model(name: spec.name, alias: .production) { return production }
            guard let latest = try store.latestModel(name: spec.name) else {
                throw CatalogError("model \"\(spec.name)\" has no versions; train one with `loupe train`")
            }
            return latest
        }
    }

    /// Reads and checks a model version's ensemble.
    public func ensemble(of manifest: ModelManifest) throws -> Ensemble {
        try Ensemble(serialized: try store.readBlob(manifest.modelBlob))
    }

    /// The metrics recorded for a model: holdout accuracy in dollars and range quality.
    static func metrics(of trained: TrainedModel) -> [String: Double] {
        var metrics: [String: Double] = ["trees": Double(trained.model.trees.count),
                                         "train_rows": Double(trained.report.rows.train)]
        if let holdout = trained.report.holdout {
            metrics["holdout_rows"] = Double(holdout.metrics.rows)
            metrics["rmse"] = holdout.metrics.rmse
            metrics["mae"] = holdout.metrics.mae
            metrics["mape"] = holdout.metrics.mape
            metrics["r2"] = holdout.metrics.r2
            if let ranges = holdout.ranges {
                metrics["coverage"] = ranges.coverage
                metrics["median_relative_width"] = ranges.medianRelativeWidth
            }
        }
        return metrics.filter { $0.value.isFinite }
    }

    static func json(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
    }
}
