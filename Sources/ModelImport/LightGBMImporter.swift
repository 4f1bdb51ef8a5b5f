import TreeModel

/// Reads LightGBM's text model format (`Booster.save_model`, `model.txt`) into the IR.
///
/// Each node keeps LightGBM's prediction rule (`Tree::NumericalDecision` and
/// `CategoricalDecision`): `value <= threshold` in double; the decision_type byte says
/// categorical (bit 0), default left (bit 1) and the missing type (bits 2–3: None, Zero, NaN).
/// Missing type None turns NaN into 0, so NaN goes where 0 goes (`missingGoesLeft = 0 <= t`);
/// Zero sends NaN and |x| ≤ 1e-35 the default way (`zeroIsMissing`); NaN sends NaN the default
/// way. Categorical nodes keep their bitset (`cat_threshold`) and send the categories in it
/// left. Trees are summed in double from 0, as LightGBM's `predict(raw_score=True)` does, and
/// node covers are the training data counts (`internal_count`, `leaf_count`), which LightGBM's
/// TreeSHAP uses.
public enum LightGBMImporter {
    /// Parses a model file's text.
    public static func ensemble(text: String, target: TargetTransform = .logPrice) throws(ImportError) -> Ensemble {
        var header: [Substring: Substring] = [:]
        var flags: Set<Substring> = []
        var blocks: [[Substring: Substring]] = []
        var current: [Substring: Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line == "end of trees" { break }
            if line.hasPrefix("Tree=") {
                if let current { blocks.append(current) }
                current = [:]
                continue
            }
            guard !line.isEmpty else { continue }
            guard let eq = line.firstIndex(of: "=") else {
                if current == nil { flags.insert(line) }
                continue
            }
            let key = line[..<eq], value = line[line.index(after: eq)...]
            if current != nil { current![key] = value } else { header[key] = value }
        }
        if let current { blocks.append(current) }

        guard text.hasPrefix("tree") else {
            throw ImportError(.malformed, "not a LightGBM text model: it should start with \"tree\"")
        }
        if let classes = header["num_class"], classes != "1" {
            throw ImportError(.unsupported, "num_class=\(classes): only single-output models (regression) are imported")
        }
        if let perIteration = header["num_tree_per_iteration"], perIteration != "1" {
            throw ImportError(.unsupported, "num_tree_per_iteration=\(perIteration): only single-output models are imported")
        }
        if flags.contains("average_output") {
            throw ImportError(.unsupported, "average_output (random forest mode) is not imported: its mean of trees is not a sum")
        }
        guard let maxFeature = header["max_feature_idx"].flatMap({ Int($0) }), maxFeature >= 0 else {
            throw ImportError(.malformed, "the header has no max_feature_idx")
        }
        var names = header["feature_names"].map { $0.split(separator: " ").map(String.init) } ?? []
        if names.count != maxFeature + 1 { names = (0...maxFeature).map { "Column_\($0)" } }
        guard !blocks.isEmpty else { throw ImportError(.malformed, "the model has no trees") }

        var trees: [Tree] = []
        trees.reserveCapacity(blocks.count)
        for (t, block) in blocks.enumerated() {
            trees.append(try tree(block, index: t, featureCount: maxFeature + 1))
        }
        let objective = header["objective"].map(String.init) ?? "unknown"
        let metadata = #"{"imported_from":"lightgbm","objective":"\#(objective.replacingOccurrences(of: "\"", with: ""))","trees":\#(trees.count)}"#
        let model = Ensemble(trees: trees, baseScore: 0, featureNames: names, target: target, metadata: metadata)
        for (t, tree) in model.trees.enumerated() {
            do throws(ModelError) { try tree.validate(featureCount: model.featureCount, index: t) } catch {
                throw ImportError(.malformed, error.message)
            }
        }
        return model
    }

    static func tree(_ block: [Substring: Substring], index t: Int, featureCount: Int) throws(ImportError) -> Tree {
        func fail(_ message: String) -> ImportError { ImportError(.malformed, "tree \(t): \(message)") }
        func numbers<T: LosslessStringConvertible>(_ key: Substring, _ count: Int, as: T.Type) throws(ImportError) -> [T] {
            guard let text = block[key] else { throw fail("no \(key)") }
            var out: [T] = []
            out.reserveCapacity(count)
            for part in text.split(separator: " ") {
                guard let v = T(String(part)) else { throw fail("\(key) has \"\(part)\", not a number") }
                out.append(v)
            }
            guard out.count == count else { throw fail("\(key) has \(out.count) values, expected \(count)") }
            return out
        }
        guard let leaves = block["num_leaves"].flatMap({ Int($0) }), leaves >= 1 else { throw fail("no num_leaves") }
        if block["is_linear"] == "1" { throw ImportError(.unsupported, "tree \(t) is a linear tree (linear_tree=true)") }
        let leafValue: [Double] = try numbers("leaf_value", leaves, as: Double.self)
        var leafCount: [Double] = [0]
        if block["leaf_count"] != nil || leaves > 1 { leafCount = try numbers("leaf_count", leaves, as: Double.self) }
        if leaves == 1 { return Tree(constant: leafValue[0], cover: leafCount[0]) }
        let n = leaves - 1
        let features: [Int32] = try numbers("split_feature", n, as: Int32.self)
        let thresholds: [Double] = try numbers("threshold", n, as: Double.self)
        let types: [Int] = try numbers("decision_type", n, as: Int.self)
        let left: [Int32] = try numbers("left_child", n, as: Int32.self)
        let right: [Int32] = try numbers("right_child", n, as: Int32.self)
        let gain: [Double] = try numbers("split_gain", n, as: Double.self)
        let counts: [Double] = try numbers("internal_count", n, as: Double.self)

        var categorySets: [[UInt32]] = []
        let catCount = block["num_cat"].flatMap { Int($0) } ?? 0
        if catCount > 0 {
            let bounds: [Int] = try numbers("cat_boundaries", catCount + 1, as: Int.self)
            guard let words = block["cat_threshold"]?.split(separator: " ").compactMap({ UInt32(String($0)) }),
                bounds.first == 0, bounds.last == words.count, zip(bounds, bounds.dropFirst()).allSatisfy({ $0 <= $1 })
            else { throw fail("cat_boundaries and cat_threshold do not agree") }
            categorySets = (0..<catCount).map { Array(words[bounds[$0]..<bounds[$0 + 1]]) }
        }
        var decision: [DecisionType] = []
        decision.reserveCapacity(n)
        for node in 0..<n {
            let type = types[node]
            let defaultLeft = type & 2 != 0
            let missingType = (type >> 2) & 3
            if type & 1 != 0 {
                let set = thresholds[node]
                guard set >= 0, Int(exactly: set).map({ $0 < categorySets.count }) == true else {
                    throw fail("node \(node) names category set \(set) of \(categorySets.count)")
                }
                decision.append(DecisionType(comparison: .categoryGoesLeft, missingGoesLeft: false))
                continue
            }
            switch missingType {
            case 0: decision.append(DecisionType(comparison: .lessOrEqual, missingGoesLeft: 0 <= thresholds[node]))
            case 1: decision.append(DecisionType(comparison: .lessOrEqual, missingGoesLeft: defaultLeft, zeroIsMissing: true))
            case 2: decision.append(DecisionType(comparison: .lessOrEqual, missingGoesLeft: defaultLeft))
            default: throw fail("node \(node) has unknown missing type \(missingType)")
            }
        }
        guard features.allSatisfy({ $0 >= 0 && Int($0) < featureCount }) else { throw fail("a split names a feature beyond max_feature_idx") }
        return Tree(
            splitFeature: features, threshold: thresholds, leftChild: left, rightChild: right, decision: decision,
            splitGain: gain, internalCover: counts, leafValue: leafValue, leafCover: leafCount, categorySets: categorySets)
    }
}
