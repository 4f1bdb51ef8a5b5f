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

    /// Points `alias` at `version` once the version is known to load: its model blob and the
    /// dataset it was trained on are read (each blob's digest checked) and decoded, as a server
    /// would. A version that would not load is refused with why, and the alias stays where it was
    /// (a server would otherwise keep serving the old version while the alias names the new one).
    /// A canary takes `percent`, the share of partners it answers (see `ArtifactStore.promote`).
    @discardableResult
    public func promote(
        name: String, version: Int, to alias: ModelAlias = .production, reason: String? = nil, percent: Int? = nil
    ) throws -> AliasRecord {
        try requireLoadable(try store.model(name: name, version: version))
        return try store.promote(name: name, version: version, to: alias, reason: reason, percent: percent)
    }

    /// Ends a canary or a shadow: servers stop routing to it at their next poll.
    @discardableResult
    public func endRollout(name: String, alias: ModelAlias, reason: String? = nil) throws -> AliasRecord {
        try store.clear(name: name, alias: alias, reason: reason)
    }

    /// Moves `alias` back to the version it pointed to before, once that version is known to
    /// load (as `promote`).
    @discardableResult
    public func rollback(name: String, alias: ModelAlias = .production, reason: String? = nil) throws -> AliasRecord {
        let stack = try store.aliases(name: name).rollbackStack(for: alias)
        if stack.count >= 2 { try requireLoadable(try store.model(name: name, version: stack[stack.count - 2])) }
        return try store.rollback(name: name, alias: alias, reason: reason)
    }

    /// Throws, saying why, unless `manifest`'s model and training dataset read and decode.
    public func requireLoadable(_ manifest: ModelManifest) throws {
        do {
            _ = try ensemble(of: manifest)
            _ = try table(of: try store.dataset(name: manifest.dataset.name, version: manifest.dataset.version))
        } catch {
            throw CatalogError(
                "model \(manifest.name) v\(manifest.version) cannot be loaded, so it is not promoted: \(error) "
                    + "(`loupe store verify` lists what is damaged)")
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
