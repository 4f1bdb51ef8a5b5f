import Testing
@testable import TreeModel

@Suite struct SerializationTests {
    @Test func roundTripIsBitExact() throws {
        var model = TreeFixtures.randomEnsemble(trees: 40, seed: 1)
        // Values whose bit patterns a lossy encoding would change.
        model.trees[0].leafValue[0] = -0.0
        model.trees[0].leafValue[model.trees[0].leafCount - 1] = Double.leastNonzeroMagnitude
        model.baseScore = 0.1 + 0.2
        let bytes = model.serialized()
        let decoded = try Ensemble(serialized: bytes)
        #expect(decoded == model)
        #expect(decoded.serialized() == bytes)
        #expect(decoded.trees[0].leafValue[0].sign == .minus)
        #expect(decoded.baseScore.bitPattern == (0.1 + 0.2).bitPattern)
    }

    @Test func roundTripWithoutCalibrationOrTrees() throws {
        let model = Ensemble(trees: [], baseScore: 3, featureNames: ["only"], target: .price)
        #expect(try Ensemble(serialized: model.serialized()) == model)
    }

    @Test func everyTruncationIsAClearError() {
        let bytes = TreeFixtures.randomEnsemble(trees: 3, seed: 2).serialized()
        for length in 0..<bytes.count {
            #expect(throws: ModelError.self) { try Ensemble(serialized: Array(bytes.prefix(length))) }
        }
    }

    @Test func everyFlippedByteIsDetected() {
        let bytes = TreeFixtures.randomEnsemble(trees: 2, seed: 4).serialized()
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x5A
            #expect(throws: ModelError.self) { try Ensemble(serialized: damaged) }
        }
    }

    @Test func wrongMagicAndVersionAreNamed() {
        let bytes = TreeFixtures.randomEnsemble(trees: 1, seed: 5).serialized()
        var notModel = bytes
        notModel[0] = UInt8(ascii: "X")
        #expect { try Ensemble(serialized: notModel) } throws: { ($0 as? ModelError)?.code == .notAModel }
        var future = bytes
        future[8] = 9
        #expect { try Ensemble(serialized: future) } throws: { ($0 as? ModelError)?.code == .unsupportedVersion }
    }

    @Test func structurallyInvalidTreeIsRefusedEvenWithAValidChecksum() {
        var model = TreeFixtures.randomEnsemble(trees: 1, seed: 6)
        model.trees = [TreeFixtures.twoLevel()]
        model.trees[0].leftChild[1] = 0  // a cycle
        let bytes = model.serialized()  // the writer does not validate; the reader must
        #expect { try Ensemble(serialized: bytes) } throws: { ($0 as? ModelError)?.code == .invalid }
    }
}
