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

    @Test func decisionTypeRejectsReservedBits() {
        #expect(DecisionType(rawValue: 0b1000) == nil)
        #expect(DecisionType(rawValue: 0b110) == nil)
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
