import Foundation
import Testing

@Suite(.serialized) struct ImportCLITests {
    /// A one-split LightGBM model on carat, as LightGBM writes it (the fields the importer reads).
    static let lightGBMModel = """
        tree
        version=v4
        num_class=1
        num_tree_per_iteration=1
        label_index=0
        max_feature_idx=8
        objective=regression
        feature_names=carat cut color clarity depth table x y z
        tree_sizes=400

        Tree=0
        num_leaves=2
        num_cat=0
        split_feature=0
        split_gain=10
        threshold=0.75000000000000011
        decision_type=2
        left_child=-1
        right_child=-2
        leaf_value=7 8.5
        leaf_weight=600 900
        leaf_count=600 900
        internal_value=0
        internal_weight=0
        internal_count=1500
        is_linear=0
        shrinkage=1


        end of trees

        """

    @Test func importRegistersAModelThatPredictsAndExplains() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 1500).write(to: dir.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        try Self.lightGBMModel.write(to: dir.appendingPathComponent("model.txt"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "train.csv"], in: dir).status == 0)

        let imported = try await CLIRunner.run(["import", "lightgbm", "model.txt", "--promote", "--out", "m.loupe"], in: dir)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("saved: model diamonds v1 (production) in loupe-store, and m.loupe"))
        #expect(imported.stdout.contains("scored by: compiled"))
        #expect(imported.stdout.contains("holdout (75 rows of diamonds v1"))

        let one = try await CLIRunner.run([
            "predict", "--carat", "1.01", "--cut", "ideal", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "6.43", "--y", "6.47", "--z", "3.99", "--explain", "--json"], in: dir)
        #expect(one.status == 0, "\(one.stderr)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])
        // exp(8.5): the right leaf; the carat split explains everything above the average, exp(0.6 · 7 + 0.4 · 8.5).
        #expect(abs(try #require(json["price"] as? Double) - exp(8.5)) < 1e-6)
        let reasons = try #require(json["reasons"] as? [String: Any])
        #expect(abs(try #require(reasons["basePrice"] as? Double) - exp(0.4 * 7 + 0.6 * 8.5)) < 1e-6)
        let steps = try #require(reasons["steps"] as? [[String: Any]])
        #expect(steps.first?["feature"] as? String == "carat")
        #expect(abs(try #require(steps.first?["factor"] as? Double) - exp(8.5 - (0.4 * 7 + 0.6 * 8.5))) < 1e-9)

        let table = try await CLIRunner.run([
            "predict", "m.loupe", "--carat", "0.5", "--cut", "ideal", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "5.1", "--y", "5.1", "--z", "3.15", "--explain"], in: dir)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("why: average diamond"))
        #expect(table.stdout.contains("carat     0.50"))

        let wrong = try await CLIRunner.run(["import", "xgboost", "model.txt"], in: dir)
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("model.txt"))
    }
}
