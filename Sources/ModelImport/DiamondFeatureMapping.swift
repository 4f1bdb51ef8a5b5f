import DiamondSchema
import TreeModel

/// Puts an imported model's features in the order of a diamond's feature vector, so the model
/// server can score it like a native model.
///
/// Feature names that are the nine diamond columns (any order, any case) are matched by name.
/// A model with exactly nine unnamed features (`Column_0`…, `f0`…) is taken to be in Loupe's
/// order (carat, cut, color, clarity, depth, table, x, y, z). Grades must have been encoded as
/// Loupe encodes them (cut Fair=0 … Ideal=4, color J=0 … D=6, clarity I1=0 … IF=7).
public enum DiamondFeatureMapping {
    /// The model with its features reordered to `Feature` order and named as Loupe names them.
    public static func conform(_ model: Ensemble) throws(ImportError) -> Ensemble {
        let diamond = Ensemble.diamondFeatureNames
        let matched = model.featureNames.map { Feature(name: $0) }
        var position: [Int]  // model feature index -> diamond feature index
        if matched.allSatisfy({ $0 != nil }), Set(matched.map { $0!.rawValue }).count == matched.count {
            position = matched.map { $0!.rawValue }
        } else if model.featureCount == diamond.count, model.featureNames.allSatisfy(isUnnamed) {
            position = Array(0..<diamond.count)
        } else {
            let unknown = model.featureNames.filter { Feature(name: $0) == nil }
            throw ImportError(
                .features,
                "the model's features \(model.featureNames) are not the diamond features \(diamond)"
                    + (unknown.isEmpty ? " (a name repeats)" : "; unknown: \(unknown)"))
        }
        var out = model
        out.featureNames = diamond
        out.trees = model.trees.map { tree in
            var tree = tree
            tree.splitFeature = tree.splitFeature.map { Int32(position[Int($0)]) }
            return tree
        }
        return out
    }

    static func isUnnamed(_ name: String) -> Bool {
        for prefix in ["Column_", "f"] where name.hasPrefix(prefix) {
            if Int(name.dropFirst(prefix.count)) != nil { return true }
        }
        return false
    }
}
