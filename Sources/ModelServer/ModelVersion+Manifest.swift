import ArtifactStore
import LoupeProtocol
import TreeModel

extension Loupe_V1_ModelVersion {
    /// A model version as ListModels (and GetJob's result) describe it: lineage, holdout metrics,
    /// LightGBM-style parameter names, the blob's digest.
    public init(_ m: ModelManifest, aliases: AliasRecord) {
        var v = Loupe_V1_ModelVersion()
        v.name = m.name
        v.version = UInt32(m.version)
        v.aliases = ModelAlias.allCases.filter { aliases[$0] == m.version }.map(\.rawValue)
        v.createdUnixMs = Int64(m.created.timeIntervalSince1970 * 1000)
        v.dataset = m.dataset.name
        v.datasetVersion = UInt32(m.dataset.version)
        var metrics = Loupe_V1_ModelMetrics()
        metrics.rows = UInt32(m.metrics["holdout_rows"] ?? 0)
        metrics.rmse = m.metrics["rmse"] ?? 0
        metrics.mae = m.metrics["mae"] ?? 0
        metrics.mape = m.metrics["mape"] ?? 0
        metrics.r2 = m.metrics["r2"] ?? 0
        metrics.coverage = m.metrics["coverage"] ?? 0
        metrics.medianWidth = m.metrics["median_relative_width"] ?? 0
        metrics.level = m.metrics["coverage"] == nil ? 0 : ConformalIntervals.defaultLevel
        v.metrics = metrics
        if case .object(let parameters) = m.hyperparameters {
            v.parameters = parameters.map { (key: Self.lightGBMName(of: $0.key), value: $0.value) }
                .sorted { $0.key < $1.key }.map { key, value in
                var p = Loupe_V1_Parameter()
                p.name = key
                switch value {
                case .number(let n): p.value = n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
                case .string(let s): p.value = s
                case .bool(let b): p.value = String(b)
                default: p.value = "\(value)"
                }
                return p
            }
        }
        v.treeCount = UInt32(m.metrics["trees"] ?? 0)
        v.digest = m.modelBlob.description
        self = v
    }

    /// A stored parameter's name as docs/PROTOCOL.md promises it: LightGBM's name where the
    /// meaning is LightGBM's (`numLeaves` → `num_leaves`, `rounds` → `num_iterations`), else the
    /// same words in snake case (`calibrationFraction` → `calibration_fraction`).
    static func lightGBMName(of key: String) -> String {
        switch key {
        case "rounds": return "num_iterations"
        case "baggingFrequency": return "bagging_freq"
        case "earlyStoppingRounds": return "early_stopping_round"
        case "threads": return "num_threads"
        default:
            var name = ""
            for character in key {
                if character.isUppercase, !name.isEmpty { name.append("_") }
                name.append(contentsOf: character.lowercased())
            }
            return name
        }
    }
}
