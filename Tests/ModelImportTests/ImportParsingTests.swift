import Foundation
@testable import ModelImport
import Testing
import TreeModel

@Suite struct ImportParsingTests {
    @Test func baseScoreInEveryXGBoostSpelling() {
        #expect(XGBoostImporter.parseBaseScore("[5.3E0]") == Float(5.3))
        #expect(XGBoostImporter.parseBaseScore("5.3E0") == Float(5.3))
        #expect(XGBoostImporter.parseBaseScore("[8.62558E0]") == Float(8.62558))
        #expect(XGBoostImporter.parseBaseScore("[1,2]") == nil)
        #expect(XGBoostImporter.parseBaseScore("nan") == nil)
    }

    @Test func lightGBMDecisionTypesBecomeTheirRules() throws {
        let model = try ImportFixture("lightgbm-zero-missing").model
        let kinds = Set(model.trees.flatMap(\.decision).map(\.zeroIsMissing))
        #expect(kinds.contains(true))
        let categorical = try ImportFixture("lightgbm-categorical").model
        #expect(categorical.trees.contains { !$0.categorySets.isEmpty })
        #expect(categorical.trees.flatMap(\.decision).contains { $0.comparison == .categoryGoesLeft })
        // Covers are LightGBM's data counts: the root holds every training row.
        #expect(model.trees[0].internalCover[0] == 3000)
    }

    @Test func xgboostCategoricalNodesSendTheirCategoriesRight() throws {
        let model = try ImportFixture("xgboost-categorical").model
        guard let tree = model.trees.first(where: { !$0.categorySets.isEmpty }),
            let node = tree.decision.firstIndex(where: { $0.comparison == .categoryGoesRight })
        else { Issue.record("no categorical split"); return }
        let set = tree.categorySets[Int(tree.threshold[node])]
        let inSet = (0..<64).first { set.count > $0 >> 5 && (set[$0 >> 5] >> UInt32($0 & 31)) & 1 != 0 }!
        #expect(!tree.goesLeft(node: node, Double(inSet)))
        #expect(tree.goesLeft(node: node, -3))  // invalid categories go left
        #expect(tree.goesLeft(node: node, 1e9))
    }

    @Test func refusesWhatItCannotScoreTheSameWay() throws {
        #expect { try LightGBMImporter.ensemble(text: "not a model") } throws: { ($0 as? ImportError)?.code == .malformed }
        var text = String(decoding: try ImportFixture.file("lightgbm-numeric.txt"), as: UTF8.self)
        text = text.replacingOccurrences(of: "num_class=1", with: "num_class=3")
        #expect { try LightGBMImporter.ensemble(text: text) } throws: { ($0 as? ImportError)?.code == .unsupported }
        var json = String(decoding: try ImportFixture.file("xgboost-numeric.json"), as: UTF8.self)
        json = json.replacingOccurrences(of: "reg:squarederror", with: "binary:logistic")
        #expect { try XGBoostImporter.ensemble(json: Data(json.utf8)) } throws: { ($0 as? ImportError)?.code == .unsupported }
        #expect { try XGBoostImporter.ensemble(json: Data("[1]".utf8)) } throws: { ($0 as? ImportError)?.code == .malformed }
    }

    @Test func diamondFeaturesAreMatchedByNameOrPosition() throws {
        let tree = Tree(
            splitFeature: [0], threshold: [1], leftChild: [~0], rightChild: [~1], decision: [.standard],
            splitGain: [1], internalCover: [2], leafValue: [1, 2], leafCover: [1, 1])
        let named = Ensemble(trees: [tree], baseScore: 0, featureNames: ["x", "carat", "cut", "color", "clarity", "depth", "table", "y", "z"], target: .logPrice)
        let conformed = try DiamondFeatureMapping.conform(named)
        #expect(conformed.featureNames == Ensemble.diamondFeatureNames)
        #expect(conformed.trees[0].splitFeature == [6])  // "x" is the diamond's 7th feature
        let unnamed = Ensemble(trees: [tree], baseScore: 0, featureNames: (0..<9).map { "Column_\($0)" }, target: .logPrice)
        #expect(try DiamondFeatureMapping.conform(unnamed).trees[0].splitFeature == [0])
        let other = Ensemble(trees: [tree], baseScore: 0, featureNames: ["a", "b"], target: .logPrice)
        #expect { try DiamondFeatureMapping.conform(other) } throws: { ($0 as? ImportError)?.code == .features }
    }
}
