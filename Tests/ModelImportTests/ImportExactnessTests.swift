import Foundation
import ModelImport
import Testing
import TreeExplain
import TreeInference
import TreeModel

@Suite struct ImportExactnessTests {
    @Test(arguments: ImportFixture.lightGBM)
    func lightGBMRawScoresAreLightGBMsBitForBit(_ name: String) throws {
        let fixture = try ImportFixture(name)
        #expect(fixture.rows.count > 300)
        var mismatches = 0
        for (row, expected) in zip(fixture.rows, fixture.raw) {
            let got = fixture.model.rawScore(row)
            if got.bitPattern != expected.bitPattern {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(name): row \(row): \(got) != LightGBM \(expected)") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test(arguments: ImportFixture.xgboost)
    func xgboostRawScoresAreXGBoostsFloat32BitForBit(_ name: String) throws {
        let fixture = try ImportFixture(name)
        #expect(fixture.model.sumsInFloat32)
        var mismatches = 0
        for (row, expected) in zip(fixture.rows, fixture.raw) {
            let got = fixture.model.rawScore(row)
            if Float(got).bitPattern != Float(expected).bitPattern || Double(Float(got)) != got {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(name): row \(row): \(got) != XGBoost \(expected)") }
            }
        }
        #expect(mismatches == 0)
    }

    /// The compiled engine agrees with the reference walk on imported models: flat kernels for
    /// LightGBM numeric splits, the generic path for the node kinds it has no code for.
    @Test(arguments: ImportFixture.lightGBM + ImportFixture.xgboost)
    func compiledEngineMatchesTheReference(_ name: String) throws {
        let fixture = try ImportFixture(name)
        for path in CompiledEnsemble.availablePaths() {
            let compiled = try CompiledEnsemble(fixture.model, configuration: InferenceConfiguration(path: path, threads: 2))
            if name.hasSuffix("numeric") { #expect(compiled.genericReason == nil && compiled.layout == .bitvector) }
            if name.contains("categorical") || name.contains("zero") {
                #expect(compiled.genericReason != nil)
            }
            let columns = (0..<fixture.model.featureCount).map { f in fixture.rows.map { $0[f] } }
            let batch = compiled.rawScores(columns: columns)
            for (i, row) in fixture.rows.enumerated() {
                let expected = fixture.model.rawScore(row)
                #expect(compiled.rawScore(row).bitPattern == expected.bitPattern)
                #expect(batch[i].bitPattern == expected.bitPattern)
            }
        }
    }

    @Test(arguments: ImportFixture.lightGBM + ImportFixture.xgboost)
    func treeSHAPMatchesTheLibrarysContributions(_ name: String) throws {
        let fixture = try ImportFixture(name)
        let explainer = try TreeExplainer(fixture.model)
        // Additivity holds for the exact sum of the leaves; XGBoost's float32 sum rounds it (by
        // up to a few float ulps, ~1e-6 here), so the check uses the double sum.
        var exact = fixture.model
        exact.sumsInFloat32 = false
        #expect(abs(explainer.baseValue - fixture.bias[0]) <= 1e-5 * max(1, abs(fixture.bias[0])))
        var worst = 0.0
        for (i, row) in fixture.rows.enumerated() {
            let phi = explainer.contributions(row)
            for f in phi.indices {
                worst = max(worst, abs(phi[f] - fixture.contributions[i][f]) / max(1, abs(fixture.contributions[i][f])))
            }
            let total = phi.reduce(explainer.baseValue, +)
            #expect(abs(total - exact.rawScore(row)) <= 1e-6, "row \(i): \(total) vs \(exact.rawScore(row))")
        }
        #expect(worst <= 1e-5, "\(name): largest contribution difference \(worst)")
    }

    @Test(arguments: ImportFixture.lightGBM + ImportFixture.xgboost)
    func importedModelsRoundTripThroughTheModelFile(_ name: String) throws {
        let fixture = try ImportFixture(name)
        let bytes = fixture.model.serialized()
        #expect(try Ensemble(serialized: bytes) == fixture.model)
    }
}
