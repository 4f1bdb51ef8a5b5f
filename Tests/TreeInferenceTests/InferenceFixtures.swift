import DataCleaning
import DiamondSchema
import LoupeUtilities
import Testing
import TreeInference
import TreeModel
import TreeTraining

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Models and rows for the inference tests (debug builds: keep them small).
enum InferenceFixtures {
    /// How a random tree's nodes compare.
    enum Comparisons {
        case lessOrEqual
        case float32
        /// Per feature: even features `<=`, odd ones float32 `<` (one kind per feature).
        case perFeature
        /// Random per node (features then mix kinds: the generic path).
        case mixed
    }

    /// A random valid tree grown like the trainer grows them (split a random leaf each step).
    static func randomTree(
        leaves: Int, features: Int, comparisons: Comparisons, threshold: (Int, inout SplitMix64) -> Double,
        using rng: inout SplitMix64
    ) -> Tree {
        var tree = Tree(constant: 0)
        tree.leafValue = []
        tree.leafCover = []
        var leafParent: [(node: Int, left: Bool)?] = [nil]
        for newLeaf in 1..<max(leaves, 1) {
            let leaf = Int.random(in: 0..<newLeaf, using: &rng)
            let node = tree.splitFeature.count
            let f = Int.random(in: 0..<features, using: &rng)
            let kind: DecisionType.ComparisonKind =
                switch comparisons {
                case .lessOrEqual: .lessOrEqual
                case .float32: .lessThanFloat32
                case .perFeature: f % 2 == 0 ? .lessOrEqual : .lessThanFloat32
                case .mixed: Bool.random(using: &rng) ? .lessOrEqual : .lessThanFloat32
                }
            tree.splitFeature.append(Int32(f))
            tree.threshold.append(threshold(f, &rng))
            tree.leftChild.append(~Int32(leaf))
            tree.rightChild.append(~Int32(newLeaf))
            tree.decision.append(DecisionType(comparison: kind, missingGoesLeft: Bool.random(using: &rng)))
            tree.splitGain.append(1)
            tree.internalCover.append(10)
            if let parent = leafParent[leaf] {
                if parent.left { tree.leftChild[parent.node] = Int32(node) } else { tree.rightChild[parent.node] = Int32(node) }
            }
            leafParent[leaf] = (node, true)
            leafParent.append((node, false))
        }
        for _ in 0..<max(leaves, 1) {
            // Values of very different magnitudes, so the order of the adds shows in the bits.
            let magnitude = [1e-9, 1e-3, 1, 1e3, 1e9][Int.random(in: 0..<5, using: &rng)]
            tree.leafValue.append(Double.random(in: -1...1, using: &rng) * magnitude)
            tree.leafCover.append(1)
        }
        return tree
    }

    /// An ensemble of random trees over `features` features whose thresholds come from a small
    /// pool per feature (so trees share thresholds, as trained ones do).
    static func randomEnsemble(
        trees: Int, leaves: ClosedRange<Int>, features: Int = 9, poolSize: Int = 12,
        comparisons: Comparisons = .lessOrEqual, seed: UInt64
    ) -> Ensemble {
        var rng = SplitMix64(state: seed)
        let pools = (0..<features).map { _ in
            (0..<poolSize).map { _ in Double.random(in: -100...100, using: &rng) * [1e-6, 1, 1e6][Int.random(in: 0..<3, using: &rng)] }
        }
        let model = (0..<trees).map { _ in
            randomTree(
                leaves: Int.random(in: leaves, using: &rng), features: features, comparisons: comparisons,
                threshold: { f, rng in pools[f][Int.random(in: 0..<poolSize, using: &rng)] }, using: &rng)
        }
        return Ensemble(
            trees: model, baseScore: Double.random(in: -10...10, using: &rng),
            featureNames: (0..<features).map { "f\($0)" }, target: .logPrice)
    }

    /// Rows that probe every threshold of `model`: each threshold itself, its neighbours
    /// (nextUp, nextDown, and the neighbouring floats), values between and beyond, ±0, ±inf, huge
    /// values, NaN, mixed with random values in the other features.
    static func probingRows(for model: Ensemble, count: Int = 600, seed: UInt64) -> [[Double]] {
        var rng = SplitMix64(state: seed)
        let nf = model.featureCount
        var candidates = [[Double]](repeating: [0, -0.0, .infinity, -.infinity, 1e300, -1e300, .nan, 3.4e38, 3.5e38], count: nf)
        for tree in model.trees {
            for n in 0..<tree.internalCount {
                let t = tree.threshold[n]
                let f = Float(t)
                candidates[Int(tree.splitFeature[n])] += [
                    t, t.nextUp, t.nextDown, Double(f), Double(f.nextUp), Double(f.nextDown),
                    (Double(f) + t) / 2, t * (1 + 1e-12), t + 1,
                ]
            }
        }
        // One row per threshold candidate (the other features random candidates), then random rows.
        var rows: [[Double]] = []
        for f in 0..<nf {
            for value in candidates[f] {
                var row = (0..<nf).map { candidates[$0].randomElement(using: &rng)! }
                row[f] = value
                rows.append(row)
            }
        }
        rows.shuffle(using: &rng)
        while rows.count < count {
            rows.append((0..<nf).map { candidates[$0].randomElement(using: &rng)! })
        }
        return rows
    }

    /// A small model from Loupe's trainer on synthetic diamonds.
    static func trained(rounds: Int, leaves: Int, maxDepth: Int, rows: Int, seed: UInt64) throws -> (Ensemble, DiamondTable) {
        let data = synthetic(rows: rows, seed: seed)
        let configuration = TrainingConfiguration(
            rounds: rounds, learningRate: 0.1, numLeaves: leaves, maxDepth: maxDepth, minDataInLeaf: 5,
            earlyStoppingRounds: 0, calibrationFraction: 0, seed: seed, threads: 1)
        return (try Trainer(configuration: configuration).train(data).model, data)
    }

    /// Synthetic diamonds: log price from carat and clarity plus noise.
    static func synthetic(rows: Int, seed: UInt64) -> DiamondTable {
        var rng = SplitMix64(state: seed)
        var table = DiamondTable()
        for row in 0..<rows {
            let carat = (Double.random(in: 0.2...2.7, using: &rng) * 100).rounded() / 100
            let x = 6.5 * carat.squareRoot() + Double.random(in: 0...0.1, using: &rng)
            let diamond = Diamond(
                carat: carat, cut: Cut(rawValue: UInt8(Int.random(in: 0..<5, using: &rng)))!,
                color: Color(rawValue: UInt8(Int.random(in: 0..<7, using: &rng)))!,
                clarity: Clarity(rawValue: UInt8(Int.random(in: 0..<8, using: &rng)))!,
                depth: 61 + Double.random(in: 0...1, using: &rng), table: 55 + Double.random(in: 0...4, using: &rng),
                x: x, y: x + 0.03, z: 0.61 * x)
            let price = exp(6 + 1.8 * log(carat * 3) + Double.random(in: -0.1...0.1, using: &rng))
            table.append(diamond, price: price, sourceRow: row + 1)
        }
        return table
    }

    /// Configurations to check: every path this machine runs, in the automatic layout (the
    /// bitvector one where trees have at most 64 leaves) and the walk layout, with 1 and 2
    /// threads (2 threads split even small batches).
    static var configurations: [InferenceConfiguration] {
        KernelPath.available().flatMap { path in
            [nil, TreeLayout.walk].flatMap { layout in
                [
                    InferenceConfiguration(path: path, layout: layout, threads: 1),
                    InferenceConfiguration(path: path, layout: layout, threads: 2, minimumParallelWork: 0),
                ]
            }
        }
    }

    static let batchSizes = [1, 7, 16, 17, 1000]

    /// Checks that every configuration scores `rows` (tiled to each batch size, and all of them
    /// as one batch) bit-identically to the reference predictor, through every entry point.
    static func expectExact(
        _ model: Ensemble, rows: [[Double]], configurations: [InferenceConfiguration] = configurations,
        batchSizes: [Int] = batchSizes, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let nf = model.featureCount
        let reference = rows.map { model.rawScore($0) }
        for configuration in configurations {
            let compiled = try CompiledEnsemble(model, configuration: configuration)
            let label = "\(configuration.path?.rawValue ?? "best"), \(compiled.layout?.rawValue ?? "generic"), \(configuration.threads) threads"
            for batch in batchSizes + (batchSizes.contains(rows.count) ? [] : [rows.count]) {
                let index = (0..<batch).map { $0 % rows.count }
                let rowMajor = index.flatMap { rows[$0] }
                var scores = [Double](repeating: .nan, count: batch)
                rowMajor.withUnsafeBufferPointer { features in
                    scores.withUnsafeMutableBufferPointer { compiled.rawScores(rowMajor: features, rows: batch, into: $0) }
                }
                let columns = (0..<nf).map { f in index.map { rows[$0][f] } }
                // Without features the columns cannot say how many rows there are.
                let columnar = nf == 0 ? scores : compiled.rawScores(columns: columns)
                var wrong = 0
                for (i, r) in index.enumerated() {
                    if scores[i].bitPattern != reference[r].bitPattern || columnar[i].bitPattern != reference[r].bitPattern {
                        if wrong < 3 {
                            Issue.record(
                                "\(label), batch \(batch), row \(r) \(rows[r]): \(scores[i]) / \(columnar[i]), reference \(reference[r])",
                                sourceLocation: sourceLocation)
                        }
                        wrong += 1
                    }
                }
                #expect(wrong == 0, "\(label), batch \(batch): \(wrong) rows differ", sourceLocation: sourceLocation)
            }
            let singles = min(rows.count, 64)
            let wrongSingles = (0..<singles).filter { compiled.rawScore(rows[$0]).bitPattern != reference[$0].bitPattern }
            #expect(wrongSingles.isEmpty, "\(label): rawScore(_:) differs on rows \(wrongSingles)", sourceLocation: sourceLocation)
        }
    }
}
