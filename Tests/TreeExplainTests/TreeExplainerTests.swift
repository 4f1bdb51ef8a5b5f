import BundledData
import CLoupeKernels
import DataCleaning
import Foundation
import Testing
@testable import TreeExplain
import TreeModel
import TreeTraining

@Suite struct TreeExplainerTests {
    /// One split: the feature's contribution is the leaf value minus the tree's mean.
    @Test func oneSplitByHand() throws {
        let tree = Tree(
            splitFeature: [1], threshold: [0.5], leftChild: [~0], rightChild: [~1], decision: [.standard],
            splitGain: [1], internalCover: [10], leafValue: [2, -1], leafCover: [4, 6])
        let model = Ensemble(trees: [tree], baseScore: 0.25, featureNames: ["a", "b"], target: .logPrice)
        let explainer = try TreeExplainer(model)
        #expect(abs(explainer.baseValue - (0.25 + 0.8 - 0.6)) < 1e-15)
        let phi = explainer.contributions([0, 0])
        #expect(phi[0] == 0)
        #expect(abs(phi[1] - (2 - 0.2)) < 1e-15)
    }

    static func trained() throws -> (Ensemble, [[Double]]) {
        let table = try Cleaner.clean(csv: BundledData.diamondsCSV()).clean.rows(Array(0..<1500))
        let configuration = TrainingConfiguration(
            rounds: 25, learningRate: 0.2, numLeaves: 31, minDataInLeaf: 5, earlyStoppingRounds: 0,
            calibrationFraction: 0, seed: 3, threads: 1)
        let model = try Trainer(configuration: configuration).train(table).model
        var rows = (0..<200).map { r in (0..<9).map { table.columns[$0][r * 7] } }
        rows.append([Double](repeating: .nan, count: 9))
        rows.append([0, 0, 0, 0, 0, 0, 0, 0, 0])
        return (model, rows)
    }

    /// The tables give Algorithm 2's values, and the contributions add up to the raw score.
    @Test func tablesAgreeWithAlgorithm2OnALoupeModel() throws {
        let (model, rows) = try Self.trained()
        let explainer = try TreeExplainer(model)
        #expect(explainer.referenceTreeCount == 0)
        for row in rows {
            let phi = explainer.contributions(row)
            var reference = [Double](repeating: 0, count: 9)
            row.withUnsafeBufferPointer { x in
                reference.withUnsafeMutableBufferPointer { out in
                    for tree in model.trees { ReferenceTreeSHAP.add(tree, x, to: out) }
                }
            }
            for f in 0..<9 { #expect(abs(phi[f] - reference[f]) <= 1e-9, "feature \(f): \(phi[f]) vs \(reference[f])") }
            #expect(abs(phi.reduce(explainer.baseValue, +) - model.rawScore(row)) <= 1e-6)
        }
    }

    @Test func batchesOnTwoThreadsEqualSingleRows() throws {
        let (model, rows) = try Self.trained()
        let explainer = try TreeExplainer(model)
        let columns = (0..<9).map { f in rows.map { $0[f] } }
        for threads in [1, 2] {
            let batch = explainer.contributions(columns: columns, threads: threads)
            for (r, row) in rows.enumerated() {
                #expect(Array(batch[(r * 9)..<(r * 9 + 9)]) == explainer.contributions(row))
            }
        }
    }

    /// Every kernel path this CPU runs gives the same bits, and the Swift path (the one
    /// categorical models take) agrees with them.
    @Test func kernelPathsAgree() throws {
        let (model, rows) = try Self.trained()
        let portable = try TreeExplainer(model, kernelPath: Int32(LOUPE_SHAP_PATH_PORTABLE))
        let best = try TreeExplainer(model)
        #expect(best.kernelPath == loupe_shap_best_path())
        #if arch(x86_64)
        // Every x86-64 machine this runs on (CI included) has AVX2 and BMI2.
        let avx512 = loupe_infer_available_paths() & (1 << LOUPE_PATH_AVX512) != 0
        #expect(loupe_shap_best_path() == Int32(avx512 ? LOUPE_SHAP_PATH_AVX512 : LOUPE_SHAP_PATH_BMI2))
        #endif
        let columns = (0..<9).map { f in rows.map { $0[f] } }
        #expect(best.contributions(columns: columns, threads: 1) == portable.contributions(columns: columns, threads: 1))
        for row in rows {
            let phi = portable.contributions(row)
            #expect(best.contributions(row) == phi)
            // The Swift loop over the same tables.
            var swift = [Double](repeating: 0, count: 9)
            row.withUnsafeBufferPointer { x in
                swift.withUnsafeMutableBufferPointer { out in
                    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(portable.maxInternal, 1)) { masks in
                        for (t, tree) in model.trees.enumerated() {
                            TreeExplainer.add(tree: t, tree, x, out, masks.baseAddress!, portable.storage.forest)
                        }
                    }
                }
            }
            #expect(swift == phi)
        }
    }

    /// Random trees over 13 features with every numeric node kind (double `<=`, float32 `<`,
    /// zero-as-missing), both missing directions, paths of up to 12 distinct features (the AVX-512
    /// kernel's second vector) and trees of more than 64 internal nodes (which it leaves to the
    /// BMI2 kernel): every path gives the portable kernel's bits, batched and row by row, and
    /// Algorithm 2's values.
    @Test func everyPathGivesThePortableBitsOnRandomTrees() throws {
        var rng = SplitMix(seed: 11)
        let nf = 13
        let thresholds = [-2.5, -1e-36, 0, 1e-36, 0.1, 0.3, 1.0 / 3, 0.7, 1.5, 3e38]
        func tree(leaves: Int) -> Tree {
            var feature: [Int32] = [], threshold: [Double] = [], left: [Int32] = [], right: [Int32] = []
            var decision: [DecisionType] = [], values: [Double] = [], leafCover: [Double] = []
            // Split a random leaf until the tree has `leaves` leaves (children: ~leaf index).
            var parentOf: [Int: (node: Int, isLeft: Bool)] = [:]
            values.append(0); leafCover.append(1)
            while values.count < leaves {
                let leaf = Int(rng.next() % UInt64(values.count))
                let n = feature.count
                feature.append(Int32(rng.next() % UInt64(nf)))
                threshold.append(thresholds[Int(rng.next() % UInt64(thresholds.count))])
                let kind = rng.next() % 3
                decision.append(DecisionType(
                    comparison: kind == 1 ? .lessThanFloat32 : .lessOrEqual, missingGoesLeft: rng.next() % 2 == 0,
                    zeroIsMissing: kind == 2))
                let newLeaf = values.count
                left.append(~Int32(leaf)); right.append(~Int32(newLeaf))
                if let p = parentOf[leaf] {
                    if p.isLeft { left[p.node] = Int32(n) } else { right[p.node] = Int32(n) }
                }
                parentOf[leaf] = (n, true); parentOf[newLeaf] = (n, false)
                values.append(Double(rng.next() % 1000) / 100 - 5); leafCover.append(0)
            }
            for l in 0..<values.count { leafCover[l] = Double(1 + rng.next() % 50) }
            // Internal covers: the sum of the children's, children after parents.
            var cover = [Double](repeating: 0, count: feature.count)
            func total(_ c: Int32) -> Double { c < 0 ? leafCover[Int(~c)] : cover[Int(c)] }
            for n in stride(from: feature.count - 1, through: 0, by: -1) { cover[n] = total(left[n]) + total(right[n]) }
            return Tree(
                splitFeature: feature, threshold: threshold, leftChild: left, rightChild: right, decision: decision,
                splitGain: feature.map { _ in 1 }, internalCover: cover, leafValue: values, leafCover: leafCover)
        }
        let trees = (0..<24).map { t in tree(leaves: t % 4 == 3 ? 90 : 2 + Int(rng.next() % 40)) }
        let model = Ensemble(trees: trees, baseScore: 0.5, featureNames: (0..<nf).map { "f\($0)" }, target: .logPrice)
        let specials = thresholds + [.nan, -0.0, 0.2, -1e300, .infinity, 1e-37]
        let rows = (0..<70).map { _ in (0..<nf).map { _ in specials[Int(rng.next() % UInt64(specials.count))] } }
        let columns = (0..<nf).map { f in rows.map { $0[f] } }
        let portable = try TreeExplainer(model, kernelPath: Int32(LOUPE_SHAP_PATH_PORTABLE))
        let expected = portable.contributions(columns: columns, threads: 1)
        var paths = [Int32(LOUPE_SHAP_PATH_PORTABLE)]
        #if arch(x86_64)
        paths.append(Int32(LOUPE_SHAP_PATH_BMI2))
        if loupe_infer_available_paths() & (1 << LOUPE_PATH_AVX512) != 0 { paths.append(Int32(LOUPE_SHAP_PATH_AVX512)) }
        #endif
        for path in paths {
            let explainer = try TreeExplainer(model, kernelPath: path)
            #expect(explainer.contributions(columns: columns, threads: 1) == expected, "path \(path), batched")
            for (r, row) in rows.enumerated() {
                #expect(explainer.contributions(row) == Array(expected[(r * nf)..<((r + 1) * nf)]), "path \(path), row \(r)")
            }
        }
        for (r, row) in rows.enumerated() {
            var reference = [Double](repeating: 0, count: nf)
            row.withUnsafeBufferPointer { x in
                reference.withUnsafeMutableBufferPointer { out in
                    for tree in model.trees { ReferenceTreeSHAP.add(tree, x, to: out) }
                }
            }
            for f in 0..<nf {
                #expect(abs(expected[r * nf + f] - reference[f]) <= 1e-9 * max(1, abs(reference[f])), "row \(r) feature \(f)")
            }
        }
    }

    /// Z(U∖B)·H(B) by its definition, for a 3-feature path.
    @Test func subsetTableHoldsTheOutsideProduct() {
        let z = [0.5, 0.25, 0.8]
        let weights = [1.0 / 3, 1.0 / 6, 1.0 / 3, 0]  // s!(2−s)!/3!
        let table = ExplainTables.subsetTable(z: z, value: 2, weights: weights)
        for b in 0..<8 {
            let inside = (0..<3).filter { b & (1 << $0) != 0 }
            var h = 0.0
            for s in 0..<8 where s & ~b == 0 {
                var term = weights[s.nonzeroBitCount]
                for j in inside where s & (1 << j) == 0 { term *= z[j] }
                h += term
            }
            let outside = (0..<3).filter { b & (1 << $0) == 0 }.reduce(1.0) { $0 * z[$1] }
            #expect(abs(table[b] - 2 * outside * h) <= 1e-15, "subset \(b)")
        }
    }

    @Test func presentationMultipliesFromTheAveragePrice() throws {
        let explanation = PriceExplanation(baseValue: log(4000), contributions: [log(3), 0, log(0.5)], featureNames: ["carat", "cut", "color"], target: .logPrice)
        #expect(abs(explanation.basePrice - 4000) < 1e-9)
        #expect(explanation.steps.map(\.feature) == ["carat", "color", "cut"])
        #expect(abs(explanation.steps[0].factor - 3) < 1e-12)
        #expect(abs(explanation.steps[0].priceAfter - 12000) < 1e-6)
        #expect(abs(explanation.steps[1].priceAfter - 6000) < 1e-6)
        #expect(abs(explanation.price - 6000) < 1e-6)
    }
}

/// A small deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
