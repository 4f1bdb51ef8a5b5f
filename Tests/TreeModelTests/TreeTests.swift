import Testing
@testable import TreeModel

@Suite struct TreeTests {
    func leaf(_ tree: Tree, _ features: [Double]) -> Int {
        features.withUnsafeBufferPointer { tree.leafIndex($0) }
    }

    @Test func valueOnTheThresholdGoesLeft() {
        let tree = TreeFixtures.twoLevel()
        #expect(leaf(tree, [1.5, 0]) == 0)
        #expect(leaf(tree, [1.5, 0.0001]) == 2)
        #expect(leaf(tree, [1.5000000000000002, -3]) == 1)
    }

    @Test func missingValuesFollowTheDefaultDirection() {
        let right = TreeFixtures.twoLevel(decision: DecisionType(comparison: .lessOrEqual, missingGoesLeft: false))
        let left = TreeFixtures.twoLevel(decision: DecisionType(comparison: .lessOrEqual, missingGoesLeft: true))
        #expect(leaf(right, [.nan, 0]) == 1)
        #expect(leaf(left, [.nan, 0]) == 0)
        #expect(leaf(left, [0, .nan]) == 0)
        #expect(leaf(right, [0, .nan]) == 2)
    }

    @Test func float32ComparisonIsStrictAndInSinglePrecision() {
        let d = DecisionType(comparison: .lessThanFloat32, missingGoesLeft: false)
        #expect(!d.goesLeft(1.5, threshold: 1.5))
        #expect(d.goesLeft(1.4999, threshold: 1.5))
        // 1.5 + 1e-12 rounds to 1.5 in float32, so it is not below 1.5 there even though it is in double.
        #expect(!d.goesLeft(1.5 - 1e-12, threshold: 1.5))
        #expect(DecisionType.standard.goesLeft(1.5 - 1e-12, threshold: 1.5))
    }

    /// LightGBM's missing type Zero: NaN and |x| <= 1e-35f go the default way.
    @Test func zeroAsMissingSendsZeroAndNaNTheMissingWay() {
        let d = DecisionType(comparison: .lessOrEqual, missingGoesLeft: false, zeroIsMissing: true)
        #expect(!d.goesLeft(0, threshold: 1))
        #expect(!d.goesLeft(-0.0, threshold: 1))
        #expect(!d.goesLeft(1e-36, threshold: 1))
        #expect(!d.goesLeft(.nan, threshold: 1))
        #expect(d.goesLeft(1e-30, threshold: 1))
        #expect(d.goesLeft(-5, threshold: 1))
        #expect(!d.goesLeft(2, threshold: 1))
    }

    /// Categorical nodes: LightGBM sends its set left (NaN, negatives and huge values right);
    /// XGBoost sends its set right (invalid categories left, NaN by the missing bit).
    @Test func categoricalNodesFollowEachLibrary() {
        let set: [UInt32] = [0b1010, 1]  // categories 1, 3 and 32
        let lightGBM = DecisionType(comparison: .categoryGoesLeft, missingGoesLeft: false)
        #expect(lightGBM.categoryGoesLeft(1, set: set) && lightGBM.categoryGoesLeft(3.9, set: set))
        #expect(lightGBM.categoryGoesLeft(32, set: set))
        #expect(!lightGBM.categoryGoesLeft(2, set: set) && !lightGBM.categoryGoesLeft(33, set: set))
        #expect(!lightGBM.categoryGoesLeft(.nan, set: set) && !lightGBM.categoryGoesLeft(-1, set: set))
        #expect(lightGBM.categoryGoesLeft(-0.5, set: [1]))  // (int)-0.5 is category 0, in the set [1]
        #expect(!lightGBM.categoryGoesLeft(3e9, set: set))
        let xgboost = DecisionType(comparison: .categoryGoesRight, missingGoesLeft: true)
        #expect(!xgboost.categoryGoesLeft(1, set: set) && !xgboost.categoryGoesLeft(32, set: set))
        #expect(xgboost.categoryGoesLeft(2, set: set) && xgboost.categoryGoesLeft(1000, set: set))
        #expect(xgboost.categoryGoesLeft(-1, set: set) && xgboost.categoryGoesLeft(2e7, set: set))
        #expect(xgboost.categoryGoesLeft(.nan, set: set))
    }

    @Test func decisionTypeRejectsReservedBits() {
        #expect(DecisionType(rawValue: 0b1_0000) == nil)
        #expect(DecisionType(rawValue: 0b1010) == nil)  // zero-as-missing applies to <= only
        #expect(DecisionType(rawValue: 0b1000)?.zeroIsMissing == true)
        #expect(DecisionType(rawValue: 0b110)?.comparison == .categoryGoesRight)
        #expect(DecisionType(rawValue: 0b011)?.missingGoesLeft == true)
        #expect(DecisionType(rawValue: 0b011)?.comparison == .lessThanFloat32)
    }

    @Test func singleLeafTreePredictsItsValue() {
        let tree = Tree(constant: 4.25)
        #expect([1.0, 2.0].withUnsafeBufferPointer { tree.predict($0) } == 4.25)
        #expect(throws: Never.self) { try tree.validate(featureCount: 2) }
    }

    @Test func validationRejectsCyclesRepeatsAndBadFeatures() {
        var cycle = TreeFixtures.twoLevel()
        cycle.leftChild[1] = 0  // points back at the root
        #expect(throws: ModelError.self) { try cycle.validate(featureCount: 2) }

        var repeated = TreeFixtures.twoLevel()
        repeated.rightChild[1] = ~0  // leaf 0 reached twice, leaf 2 never
        #expect(throws: ModelError.self) { try repeated.validate(featureCount: 2) }

        let badFeature = TreeFixtures.twoLevel()
        #expect(throws: ModelError.self) { try badFeature.validate(featureCount: 1) }

        var short = TreeFixtures.twoLevel()
        short.leafCover.removeLast()
        #expect(throws: ModelError.self) { try short.validate(featureCount: 2) }

        #expect(throws: Never.self) { try TreeFixtures.twoLevel().validate(featureCount: 2) }
    }
}
