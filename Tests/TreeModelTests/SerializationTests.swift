import DiamondSchema
import Foundation
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

    @Test(arguments: [false, true]) func everyTruncationIsAClearError(adaptive: Bool) {
        let model = adaptive ? TreeFixtures.adaptiveEnsemble(trees: 3, seed: 2) : TreeFixtures.randomEnsemble(trees: 3, seed: 2)
        let bytes = model.serialized()
        for length in 0..<bytes.count {
            #expect(throws: ModelError.self) { try Ensemble(serialized: Array(bytes.prefix(length))) }
        }
    }

    @Test(arguments: [false, true]) func everyFlippedByteIsDetected(adaptive: Bool) {
        let model = adaptive ? TreeFixtures.adaptiveEnsemble(trees: 2, seed: 4) : TreeFixtures.randomEnsemble(trees: 2, seed: 4)
        let bytes = model.serialized()
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

    // MARK: - Adaptive ranges (format version 3) and older files

    @Test func adaptiveRangesRoundTripAsVersion3() throws {
        let model = TreeFixtures.adaptiveEnsemble(trees: 5, seed: 11)
        let bytes = model.serialized()
        #expect(bytes[8] == 3 && bytes[9] == 0)
        let decoded = try Ensemble(serialized: bytes)
        #expect(decoded == model)
        #expect(decoded.serialized() == bytes)
        #expect(decoded.intervals?.errorScale == TreeFixtures.errorScale())
    }

    @Test func modelsWithoutAdaptiveRangesKeepTheirOldVersion() {
        #expect(TreeFixtures.randomEnsemble(trees: 2, seed: 12).serialized()[8] == 1)
        var imported = TreeFixtures.randomEnsemble(trees: 2, seed: 12)
        imported.sumsInFloat32 = true
        #expect(imported.serialized()[8] == 2)
    }

    /// A version 1 file written by the build before adaptive ranges (3 trees trained on 300
    /// bundled rows, 30 calibration residuals), with the ranges that build served for two stones.
    @Test func versionOneFileLoadsAndServesItsConstantWidthRanges() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/v1-constant-width.loupe")
        let bytes = Array(try Data(contentsOf: url))
        let model = try Ensemble(serialized: bytes)
        let intervals = try #require(model.intervals)
        #expect(!intervals.isAdaptive)
        #expect(intervals.count == 30)
        #expect(model.serialized() == bytes)  // still written as version 1, byte for byte

        let ideal = Diamond(carat: 0.7, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 5.7, y: 5.72, z: 3.53)
        let fair = Diamond(carat: 0.3, cut: .fair, color: .j, clarity: .i1, depth: 64, table: 58, x: 4.25, y: 4.2, z: 2.7)
        let served: [(Diamond, PriceEstimate)] = [
            (ideal, PriceEstimate(price: 1741.0716325037695, low: 456.169725699862, high: 6645.1810778512945, level: 0.9)),
            (fair, PriceEstimate(price: 1314.255970486627, low: 344.3418262430351, high: 5016.145656208043, level: 0.9)),
        ]
        for (diamond, before) in served {
            let now = model.estimate(diamond, level: 0.9)
            for (a, b) in [(now.price, before.price), (now.low, before.low), (now.high, before.high)] {
                #expect(abs(a - b) <= 1e-9 * b)
            }
            #expect(now.level == 0.9)
        }
        // Constant width: the same multiplicative range for both stones.
        let ratios = served.map { model.estimate($0.0).high / model.estimate($0.0).price }
        #expect(abs(ratios[0] - ratios[1]) < 1e-12)
    }

    @Test func badErrorScalesAreRefused() throws {
        #expect(throws: ModelError.self) {
            try ErrorScale(rawScoreEdges: [2, 1], priceFactors: [1, 1, 1], gradeFactors: [])
        }
        #expect(throws: ModelError.self) { try ErrorScale(rawScoreEdges: [1], priceFactors: [1], gradeFactors: []) }
        #expect(throws: ModelError.self) { try ErrorScale(rawScoreEdges: [], priceFactors: [0], gradeFactors: []) }
        #expect(throws: ModelError.self) {
            try ErrorScale(rawScoreEdges: [], priceFactors: [1], gradeFactors: [.init(feature: 1, factors: [.nan])])
        }
        // A grade feature outside the model's features is refused at load, checksum or not.
        var model = TreeFixtures.adaptiveEnsemble(trees: 1, seed: 13)
        model.featureNames = Array(model.featureNames.prefix(3))  // clarity (feature 3) is gone
        model.trees = [Tree(constant: 0)]
        #expect { try Ensemble(serialized: model.serialized()) } throws: { ($0 as? ModelError)?.code == .invalid }
    }
}
