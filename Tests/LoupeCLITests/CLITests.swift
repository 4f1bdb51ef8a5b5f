import Foundation
import Testing

@Suite(.serialized) struct CLITests {
    static let fastTraining = ["--rounds", "30", "--num-leaves", "15", "--early-stopping", "0", "--threads", "1",
                               "--calibration-fraction", "0.2", "--quiet"]

    @Test func trainPredictAndEvaluateOnAFile() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 1500).write(to: dir.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        try sampleCSV(rows: 300, seed: 2).write(to: dir.appendingPathComponent("test.csv"), atomically: true, encoding: .utf8)

        let train = try await CLIRunner.run(["train", "--data", "train.csv", "--out", "m.loupe", "--report", "r.json"]
            + Self.fastTraining, in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("saved: model diamonds v1 in loupe-store, and m.loupe"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.json").path))

        let one = try await CLIRunner.run([
            "predict", "m.loupe", "--carat", "1.01", "--cut", "ideal", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "6.43", "--y", "6.47", "--z", "3.99", "--json"], in: dir)
        #expect(one.status == 0, "\(one.stderr)")
        let estimate = try JSONDecoder().decode([String: Double].self, from: Data(one.stdout.utf8))
        let price = try #require(estimate["price"])
        let low = try #require(estimate["low"])
        let high = try #require(estimate["high"])
        #expect(low < price && price < high)
        #expect(price > 1000 && price < 20000)

        let batch = try await CLIRunner.run(["predict", "m.loupe", "--csv", "test.csv", "--out", "p.csv"], in: dir)
        #expect(batch.status == 0, "\(batch.stderr)")
        let predictions = try String(contentsOf: dir.appendingPathComponent("p.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(predictions.first == "row,price,low,high,level")
        #expect(predictions.count == 301)

        let evaluate = try await CLIRunner.run(["evaluate", "m.loupe", "test.csv", "--json"], in: dir)
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any]
        let metrics = try #require(report?["metrics"] as? [String: Any])
        #expect((metrics["rows"] as? Int) == 300)
        #expect(try #require(metrics["r2"] as? Double) > 0.8)
    }

    /// `evaluate` reports range coverage and median width per price decile and per grade level,
    /// in the table and in the JSON.
    @Test func evaluateReportsCoverageByDecileAndByGrade() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 1500).write(to: dir.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        try sampleCSV(rows: 400, seed: 3).write(to: dir.appendingPathComponent("test.csv"), atomically: true, encoding: .utf8)
        let train = try await CLIRunner.run(["train", "--data", "train.csv", "--out", "m.loupe"] + Self.fastTraining, in: dir)
        #expect(train.status == 0, "\(train.stderr)")

        let text = try await CLIRunner.run(["evaluate", "m.loupe", "test.csv"], in: dir)
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("90% ranges: coverage") && $0.contains("median width") })
        #expect(lines.contains { $0.hasPrefix("decile") && $0.contains("cover") && $0.contains("width") })
        #expect(lines.contains { $0.hasPrefix("grade") && $0.contains("level") && $0.contains("cover") && $0.contains("width") })
        let gradeLines = lines.filter { ["cut ", "color ", "clarity "].contains(where: $0.hasPrefix) }
        #expect(gradeLines.count == 5 + 7 + 8)
        #expect(gradeLines.contains { $0.hasPrefix("cut      Fair") && $0.trimmingCharacters(in: .whitespaces).hasSuffix("%") })
        #expect(gradeLines.contains { $0.hasPrefix("clarity  IF") })

        let json = try await CLIRunner.run(["evaluate", "m.loupe", "test.csv", "--json"], in: dir)
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((report["deciles"] as? [Any])?.count == 10)
        let grades = try #require(report["grades"] as? [[String: Any]])
        #expect(grades.count == 20)
        #expect(grades.first?["grade"] as? String == "cut" && grades.first?["level"] as? String == "Fair")
        #expect(grades.last?["grade"] as? String == "clarity" && grades.last?["level"] as? String == "IF")
        var rowsPerGrade: [String: Int] = [:]
        for group in grades {
            let ranges = try #require(group["ranges"] as? [String: Any])
            let coverage = try #require(ranges["coverage"] as? Double)
            #expect(coverage >= 0 && coverage <= 1)
            #expect(try #require(ranges["medianRelativeWidth"] as? Double) > 0)
            let rows = try #require((group["metrics"] as? [String: Any])?["rows"] as? Int)
            rowsPerGrade[group["grade"] as! String, default: 0] += rows
        }
        #expect(rowsPerGrade == ["cut": 400, "color": 400, "clarity": 400])  // every row in one level of each
    }

    @Test func cleanWritesEveryRowToExactlyOneOutput() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dirty = sampleCSV(rows: 50) + "0.5,Ideal,E,SI1,61.5,55,-3,5.1,5.1,3.14\n0.5,Shiny,E,SI1,61.5,55,900,5.1,5.1,3.14\n"
        try dirty.write(to: dir.appendingPathComponent("in.csv"), atomically: true, encoding: .utf8)
        let result = try await CLIRunner.run(["clean", "in.csv", "--out", "c.csv", "--quarantine", "q.csv", "--json"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let clean = try String(contentsOf: dir.appendingPathComponent("c.csv"), encoding: .utf8).split(separator: "\n")
        let quarantine = try String(contentsOf: dir.appendingPathComponent("q.csv"), encoding: .utf8).split(separator: "\n")
        #expect(clean.count - 1 + quarantine.count - 1 == 52)
        #expect(quarantine.contains { $0.contains("price_positive") })
        #expect(quarantine.contains { $0.contains("parse") && $0.contains("Shiny") })
    }

    @Test(arguments: [
        (["predict", "missing.loupe", "--csv", "x.csv"], "missing.loupe"),
        (["train", "--data", "nope.csv", "--quiet"], "nope.csv"),
        (["train", "--num-leaves", "1", "--quiet"], "num_leaves"),
        (["train", "--target", "dollars", "--quiet"], "--target"),
        (["evaluate", "bad.loupe", "t.csv"], "bad.loupe"),
        (["clean", "header-only-wrong.csv"], "missing required column"),
    ])
    func errorsAreOneClearLineAndANonZeroExit(arguments: [String], mentions: String) async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "not a model".write(to: dir.appendingPathComponent("bad.loupe"), atomically: true, encoding: .utf8)
        try "a,b,c\n1,2,3\n".write(to: dir.appendingPathComponent("header-only-wrong.csv"), atomically: true, encoding: .utf8)
        let result = try await CLIRunner.run(arguments, in: dir)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
    }

    @Test func predictRejectsAnImpossibleDiamond() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 400).write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["train", "--data", "t.csv", "--out", "m.loupe"] + Self.fastTraining, in: dir).status == 0)
        let result = try await CLIRunner.run([
            "predict", "m.loupe", "--carat=-1", "--cut", "Ideal", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "6.43", "--y", "6.47", "--z", "3.99"], in: dir)
        #expect(result.status != 0)
        #expect(result.stderr.contains("carat must be > 0"))
        let badGrade = try await CLIRunner.run([
            "predict", "m.loupe", "--carat", "1", "--cut", "Shiny", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "6.43", "--y", "6.47", "--z", "3.99"], in: dir)
        #expect(badGrade.status != 0)
        #expect(badGrade.stderr.contains("Fair, Good, Very Good, Premium, Ideal"))
    }

    @Test func bundledDataAndProvenance() async throws {
        let provenance = try await CLIRunner.run(["data", "--provenance"])
        #expect(provenance.status == 0)
        #expect(provenance.stdout.contains("ggplot2"))
        let data = try await CLIRunner.run(["data"])
        #expect(data.stdout.split(separator: "\n").count == 53_941)
    }
}
