import DataCleaning
import Foundation
import DiamondSchema
import Testing
import TreeModel
@testable import TreeTraining

@Suite struct TrainerTests {
    static let small = TrainingConfiguration(
        rounds: 60, learningRate: 0.2, numLeaves: 15, maxDepth: 5, minDataInLeaf: 10, earlyStoppingRounds: 0,
        calibrationFraction: 0.2, seed: 7, threads: 1)

    @Test func learnsASyntheticPriceAndCalibratesItsRanges() throws {
        let data = TrainingFixtures.synthetic(rows: 3000, seed: 1)
        let trained = try Trainer(configuration: Self.small).train(data)
        let holdout = try #require(trained.report.holdout)
        #expect(holdout.metrics.r2 > 0.97)
        #expect(holdout.metrics.mape < 8)
        let test = TrainingFixtures.synthetic(rows: 2000, seed: 2)
        let evaluation = EvaluationReport(model: trained.model, table: test)
        #expect(evaluation.metrics.r2 > 0.97)
        let ranges = try #require(evaluation.ranges)
        #expect(ranges.coverage > 0.85 && ranges.coverage < 0.95)
        #expect(trained.model.trees.count == 60)
        #expect(trained.report.rows == .init(total: 3000, train: 2400, validation: 0, calibration: 600))
    }

    @Test func trainingLossFallsEveryFewRounds() throws {
        let data = TrainingFixtures.synthetic(rows: 1500, seed: 3)
        let report = try Trainer(configuration: Self.small).train(data).report
        let curve = report.trainLossCurve
        #expect(curve.count == 60)
        #expect(curve[59] < curve[29] && curve[29] < curve[9] && curve[9] < curve[0])
    }

    @Test func sameSeedAndThreadsGiveTheSameModelBytes() throws {
        let data = TrainingFixtures.synthetic(rows: 6000, seed: 4)
        var config = Self.small
        config.rounds = 15
        config.threads = 2
        config.featureFraction = 0.7
        config.baggingFraction = 0.8
        let a = try Trainer(configuration: config).train(data).model
        let b = try Trainer(configuration: config).train(data).model
        let same = a.serialized() == b.serialized()
        #expect(same)
        config.seed = 8
        let c = try Trainer(configuration: config).train(data).model
        let differs = a.serialized() != c.serialized()
        #expect(differs)
    }

    @Test func treesRespectLeafDepthAndSizeLimits() throws {
        let data = TrainingFixtures.synthetic(rows: 2000, seed: 5)
        var config = Self.small
        config.rounds = 10
        config.numLeaves = 12
        config.maxDepth = 3
        config.minDataInLeaf = 40
        let model = try Trainer(configuration: config).train(data).model
        for tree in model.trees {
            #expect(tree.leafCount <= 8)  // depth 3 caps a tree at 8 leaves, below num_leaves
            #expect(tree.leafCover.allSatisfy { $0 >= 40 })
            #expect(depth(of: tree) <= 3)
        }
        config.maxDepth = 0
        let unlimited = try Trainer(configuration: config).train(data).model
        #expect(unlimited.trees.contains { $0.leafCount == 12 })
    }

    @Test func earlyStoppingKeepsTheBestRound() throws {
        let data = TrainingFixtures.synthetic(rows: 800, seed: 6)
        var config = Self.small
        config.rounds = 400
        config.learningRate = 0.9
        config.numLeaves = 31
        config.minDataInLeaf = 2
        config.earlyStoppingRounds = 10
        let trained = try Trainer(configuration: config).train(data)
        let report = trained.report
        #expect(report.roundsTrained < 400)
        #expect(report.roundsTrained == report.bestRound + 10)
        #expect(trained.model.trees.count == report.bestRound)
        let best = try #require(report.validationLossCurve.min())
        #expect(report.validationLossCurve[report.bestRound - 1] == best)
    }

    @Test func binnedTreesAgreeWithTheModelOnEveryTrainingRow() throws {
        // The learner decides on bins; the model on real thresholds. Scores must match exactly.
        let data = TrainingFixtures.synthetic(rows: 1200, seed: 7)
        var config = Self.small
        config.rounds = 5
        config.calibrationFraction = 0
        let rows = Array(0..<data.count)
        let target = data.price.map { log($0) }
        let result = GradientBooster.boost(
            columns: data.columns, target: target, trainRows: rows, validationRows: rows, configuration: config,
            featureNames: Ensemble.diamondFeatureNames, progress: nil)
        let binned = BinnedRows(columns: data.columns, rows: rows, featureBins: result.featureBins)
        for (t, tree) in result.ensemble.trees.enumerated() {
            for r in rows {
                let viaModel = data.columns.map { $0[r] }.withUnsafeBufferPointer { tree.leafIndex($0) }
                var node = 0
                var leaf = 0
                if tree.internalCount > 0 {
                    while true {
                        let f = Int(tree.splitFeature[node])
                        let bin = result.featureBins[f].bin(tree.threshold[node])
                        let next = binned[r, f] <= bin ? tree.leftChild[node] : tree.rightChild[node]
                        if next < 0 { leaf = Int(~next); break }
                        node = Int(next)
                    }
                }
                #expect(viaModel == leaf, "tree \(t) row \(r)")
            }
        }
    }

    @Test func rawPriceTargetTrainsToo() throws {
        var config = Self.small
        config.target = .price
        let data = TrainingFixtures.synthetic(rows: 2000, seed: 8)
        let trained = try Trainer(configuration: config).train(data)
        #expect(trained.model.target == .price)
        #expect(try #require(trained.report.holdout).metrics.r2 > 0.9)
    }

    @Test func badConfigurationNamesTheParameter() {
        var config = Self.small
        config.numLeaves = 1
        #expect { try Trainer(configuration: config).train(TrainingFixtures.synthetic(rows: 100, seed: 1)) } throws: {
            ($0 as? TrainingError)?.message.contains("num_leaves") == true
        }
        config = Self.small
        config.maxBin = 256
        #expect { try config.validate() } throws: { ($0 as? TrainingError)?.message.contains("max_bin") == true }
    }

    @Test func badDataNamesTheRow() {
        var data = TrainingFixtures.synthetic(rows: 200, seed: 9)
        var columns = data.columns
        columns[0][17] = .nan
        data = DiamondTable(columns: columns, price: data.price, sourceRow: data.sourceRow)
        #expect { try Trainer(configuration: Self.small).train(data) } throws: {
            ($0 as? TrainingError)?.message.contains("row 18: carat") == true
        }
        var prices = TrainingFixtures.synthetic(rows: 200, seed: 9).price
        prices[3] = 0
        let zeroPrice = DiamondTable(columns: columns, price: prices)
        #expect { try Trainer(configuration: Self.small).train(zeroPrice) } throws: { $0 is TrainingError }
        #expect { try Trainer(configuration: Self.small).train(DiamondTable()) } throws: {
            ($0 as? TrainingError)?.code == .invalidData
        }
    }

    @Test func progressIsReportedEveryRound() throws {
        let box = ProgressBox()
        _ = try Trainer(configuration: Self.small).train(TrainingFixtures.synthetic(rows: 500, seed: 10)) {
            box.rounds.append($0.round)
        }
        #expect(box.rounds == Array(1...60))
    }

    private func depth(of tree: Tree) -> Int {
        func walk(_ child: Int32) -> Int { child < 0 ? 0 : 1 + max(walk(tree.leftChild[Int(child)]), walk(tree.rightChild[Int(child)])) }
        return tree.internalCount == 0 ? 0 : walk(0)
    }
}

final class ProgressBox: @unchecked Sendable {
    var rounds: [Int] = []
}

@Suite struct TrainerWithValidationTests {
    @Test func givenValidationIsUsedForEarlyStoppingAndMetrics() throws {
        let train = TrainingFixtures.synthetic(rows: 1500, seed: 21)
        let validation = TrainingFixtures.synthetic(rows: 400, seed: 22)
        var config = TrainerTests.small
        config.earlyStoppingRounds = 5
        config.rounds = 300
        config.learningRate = 0.5
        let trained = try Trainer(configuration: config).train(train, validation: validation)
        #expect(trained.report.rows == .init(total: 1900, train: 1500, validation: 400, calibration: 0))
        #expect(trained.model.intervals == nil)
        let holdout = try #require(trained.report.holdout)
        #expect(holdout.metrics.rows == 400)
        let direct = EvaluationReport(model: trained.model, table: validation)
        #expect(direct.metrics.rmse == holdout.metrics.rmse)
        #expect(trained.report.roundsTrained < 300)
    }

    @Test func stopConditionEndsTrainingEarly() throws {
        let data = TrainingFixtures.synthetic(rows: 800, seed: 23)
        let trained = try Trainer(configuration: TrainerTests.small).train(data, shouldStop: { $0.round >= 12 })
        #expect(trained.report.roundsTrained == 12)
        #expect(trained.model.trees.count == 12)
    }
}
