import Foundation
import TreeModel

/// Reads XGBoost's JSON model format (`Booster.save_model("model.json")`, schema
/// `doc/model.schema`) into the IR.
///
/// XGBoost works in float32: a node sends `x` left when `Float(x) < split_condition`, NaN goes
/// the `default_left` way, and the prediction starts at `base_score` and adds each tree's leaf,
/// every add rounded to float (`sumsInFloat32`). Categorical nodes (`split_type` 1) send the
/// categories listed for them right and every other category left. Node covers are
/// `sum_hessian`, which XGBoost's TreeSHAP uses. Nodes are renumbered in preorder (children
/// after parents, leaves left to right); pruned nodes that the root no longer reaches are
/// dropped.
public enum XGBoostImporter {
    /// Objectives whose margin is the prediction itself (the identity link).
    static let identityObjectives: Set<String> = [
        "reg:squarederror", "reg:linear", "reg:pseudohubererror", "reg:absoluteerror", "reg:quantileerror",
    ]

    /// Parses a JSON model file's bytes.
    public static func ensemble(json: Data, target: TargetTransform = .logPrice) throws(ImportError) -> Ensemble {
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
                throw ImportError(.malformed, "not an XGBoost JSON model: the top level is not an object")
            }
            root = object
        } catch let error as ImportError {
            throw error
        } catch {
            throw ImportError(.malformed, "not JSON (UBJSON models are not read; save as .json): \(error)")
        }
        guard let learner = root["learner"] as? [String: Any],
            let parameters = learner["learner_model_param"] as? [String: Any],
            let booster = learner["gradient_booster"] as? [String: Any]
        else { throw ImportError(.malformed, "not an XGBoost JSON model: no learner.gradient_booster") }
        let objective = ((learner["objective"] as? [String: Any])?["name"] as? String) ?? "unknown"
        guard identityObjectives.contains(objective) else {
            throw ImportError(.unsupported, "objective \(objective): only regression objectives with the identity link are imported")
        }
        guard (booster["name"] as? String) == "gbtree" else {
            throw ImportError(.unsupported, "booster \(booster["name"] ?? "?"): only gbtree is imported (not dart or gblinear)")
        }
        if let targets = parameters["num_target"] as? String, targets != "1" {
            throw ImportError(.unsupported, "num_target=\(targets): only single-output models are imported")
        }
        if let classes = parameters["num_class"] as? String, classes != "0", classes != "1" {
            throw ImportError(.unsupported, "num_class=\(classes): only single-output models are imported")
        }
        guard let base = (parameters["base_score"] as? String).flatMap(parseBaseScore) else {
            throw ImportError(.malformed, "learner_model_param.base_score is missing or not a number")
        }
        guard let featureCount = (parameters["num_feature"] as? String).flatMap({ Int($0) }), featureCount > 0 else {
            throw ImportError(.malformed, "learner_model_param.num_feature is missing")
        }
        var names = (learner["feature_names"] as? [String]) ?? []
        if names.count != featureCount { names = (0..<featureCount).map { "f\($0)" } }
        guard let model = booster["model"] as? [String: Any], let rawTrees = model["trees"] as? [[String: Any]] else {
            throw ImportError(.malformed, "gradient_booster.model.trees is missing")
        }
        if let info = model["tree_info"] as? [Any], info.contains(where: { ($0 as? NSNumber)?.intValue != 0 }) {
            throw ImportError(.unsupported, "trees for several outputs (tree_info): only single-output models are imported")
        }
        var trees: [Tree] = []
        trees.reserveCapacity(rawTrees.count)
        for (t, raw) in rawTrees.enumerated() {
            let tree = try Self.tree(raw, index: t, featureCount: featureCount)
            do throws(ModelError) { try tree.validate(featureCount: featureCount, index: t) } catch { throw ImportError(.malformed, error.message) }
            trees.append(tree)
        }
        let metadata = #"{"imported_from":"xgboost","objective":"\#(objective)","trees":\#(trees.count)}"#
        return Ensemble(
            trees: trees, baseScore: Double(base), featureNames: names, target: target, metadata: metadata,
            sumsInFloat32: true)
    }

    /// `base_score` as XGBoost 3 writes it ("[5.3E0]", a vector of one) or as older versions do ("5.3E0").
    static func parseBaseScore(_ text: String) -> Float? {
        var s = Substring(text)
        if s.hasPrefix("[") && s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        guard !s.contains(","), let value = Float(String(s).trimmingCharacters(in: .whitespaces)), value.isFinite else { return nil }
        return value
    }

    static func tree(_ raw: [String: Any], index t: Int, featureCount: Int) throws(ImportError) -> Tree {
        func fail(_ message: String) -> ImportError { ImportError(.malformed, "tree \(t): \(message)") }
        func numbers(_ key: String) throws(ImportError) -> [Double] {
            guard let array = raw[key] as? [Any] else { throw fail("no \(key)") }
            var out: [Double] = []
            out.reserveCapacity(array.count)
            for v in array {
                guard let number = v as? NSNumber else { throw fail("\(key) holds a non-number") }
                out.append(number.doubleValue)
            }
            return out
        }
        let left = try numbers("left_children").map { Int($0) }
        let right = try numbers("right_children").map { Int($0) }
        let feature = try numbers("split_indices").map { Int($0) }
        let condition = try numbers("split_conditions")
        let defaultLeft = try numbers("default_left")
        let hessian = try numbers("sum_hessian")
        let gain = try numbers("loss_changes")
        let splitType = (try? numbers("split_type")) ?? []
        let count = left.count
        guard count > 0, [right.count, feature.count, condition.count, defaultLeft.count, hessian.count, gain.count]
            .allSatisfy({ $0 == count }), splitType.isEmpty || splitType.count == count
        else { throw fail("node arrays differ in length") }

        // Categories of each categorical node, as a bitset.
        var categoriesOf: [Int: [UInt32]] = [:]
        let catNodes = (try? numbers("categories_nodes")) ?? []
        if !catNodes.isEmpty {
            let segments = try numbers("categories_segments"), sizes = try numbers("categories_sizes")
            let categories = try numbers("categories")
            guard segments.count == catNodes.count, sizes.count == catNodes.count else {
                throw fail("categories_nodes, _segments and _sizes differ in length")
            }
            for (i, node) in catNodes.enumerated() {
                let start = Int(segments[i]), size = Int(sizes[i])
                guard start >= 0, size >= 0, start + size <= categories.count else { throw fail("a category segment is out of range") }
                var bits: [UInt32] = []
                for c in categories[start..<(start + size)] {
                    guard c >= 0, c < 16_777_216 else { throw fail("category \(c) out of range") }
                    let word = Int(c) >> 5
                    if bits.count <= word { bits += [UInt32](repeating: 0, count: word + 1 - bits.count) }
                    bits[word] |= 1 << UInt32(Int(c) & 31)
                }
                categoriesOf[Int(node)] = bits
            }
        }

        var tree = Tree(
            splitFeature: [], threshold: [], leftChild: [], rightChild: [], decision: [], splitGain: [],
            internalCover: [], leafValue: [], leafCover: [])
        if left[0] == -1 {
            return Tree(constant: Double(Float(condition[0])), cover: hessian[0])
        }
        // Preorder: a node's index is assigned before its children's, leaves left to right.
        var visited = 0
        func visit(_ id: Int, depth: Int) throws(ImportError) -> Int32 {
            visited += 1
            guard id >= 0, id < count, visited <= count, depth < 4096 else { throw fail("node \(id) is out of range or in a cycle") }
            if left[id] == -1 {
                tree.leafValue.append(Double(Float(condition[id])))
                tree.leafCover.append(hessian[id])
                return ~Int32(tree.leafValue.count - 1)
            }
            let index = tree.splitFeature.count
            guard feature[id] >= 0, feature[id] < featureCount else { throw fail("node \(id) tests feature \(feature[id])") }
            tree.splitFeature.append(Int32(feature[id]))
            tree.splitGain.append(gain[id])
            tree.internalCover.append(hessian[id])
            tree.leftChild.append(0)
            tree.rightChild.append(0)
            let missingLeft = defaultLeft[id] != 0
            if !splitType.isEmpty, splitType[id] == 1 {
                guard let bits = categoriesOf[id] else { throw fail("categorical node \(id) has no categories") }
                tree.threshold.append(Double(tree.categorySets.count))
                tree.categorySets.append(bits)
                tree.decision.append(DecisionType(comparison: .categoryGoesRight, missingGoesLeft: missingLeft))
            } else {
                tree.threshold.append(Double(Float(condition[id])))
                tree.decision.append(DecisionType(comparison: .lessThanFloat32, missingGoesLeft: missingLeft))
            }
            let l = try visit(left[id], depth: depth + 1)
            let r = try visit(right[id], depth: depth + 1)
            tree.leftChild[index] = l
            tree.rightChild[index] = r
            return Int32(index)
        }
        _ = try visit(0, depth: 0)
        return tree
    }
}
