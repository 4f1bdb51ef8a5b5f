import Foundation
import Testing

@Suite(.serialized) struct RolloutCLITests {
    @Test func canaryShadowAndOutcomesFromTheCommandLine() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 600).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "a.csv"], in: dir).status == 0)
        let training = ["--rounds", "20", "--num-leaves", "7", "--early-stopping", "0", "--calibration-fraction", "0.2",
                        "--threads", "1", "--quiet"]
        #expect(try await CLIRunner.run(["train", "--promote"] + training, in: dir).status == 0)
        #expect(try await CLIRunner.run(["train"] + training, in: dir).status == 0)

        let canary = try await CLIRunner.run(["models", "canary", "2", "--percent", "30", "--reason", "try it"], in: dir)
        #expect(canary.status == 0, "\(canary.stderr)")
        #expect(canary.stdout.contains("canary → v2 for 30% of partners (production v1 answers the rest)"))
        #expect(try await CLIRunner.run(["models", "list"], in: dir).stdout.contains("canary(30%)"))
        for bad in [["models", "canary", "2", "--percent", "0"], ["models", "canary"], ["models", "canary", "2", "--stop"],
                    ["models", "promote", "2", "--to", "canary"], ["models", "shadow"]] {
            let refused = try await CLIRunner.run(bad, in: dir)
            #expect(refused.status != 0, "\(bad)")
            #expect(!refused.stderr.isEmpty)
        }
        let stop = try await CLIRunner.run(["models", "canary", "--stop", "--reason", "enough"], in: dir)
        #expect(stop.status == 0 && stop.stdout.contains("canary v2 ended"))
        let again = try await CLIRunner.run(["models", "canary", "--stop"], in: dir)
        #expect(again.status != 0 && again.stderr.contains("no canary running"))
        #expect(again.stderr.split(separator: "\n").count == 1)
        let shadow = try await CLIRunner.run(["models", "shadow", "2"], in: dir)
        #expect(shadow.status == 0 && shadow.stdout.contains("shadow → v2"))
        #expect(try await CLIRunner.run(["models", "shadow", "--stop"], in: dir).status == 0)
        let history = try await CLIRunner.run(["models", "list", "--json"], in: dir)
        #expect(history.stdout.contains("\"reason\" : \"enough\"") && history.stdout.contains("\"action\" : \"clear\""))

        // Sold prices: one bad line is reported by number, the rest recorded and shown per version.
        var sold = sampleCSV(rows: 40, seed: 5)
        sold += "1.0,Ideal,G,SI1,61.8,57,-5,6.4,6.4,4.0\n"
        try sold.write(to: dir.appendingPathComponent("sold.csv"), atomically: true, encoding: .utf8)
        let ingest = try await CLIRunner.run(["outcomes", "ingest", "sold.csv"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("40 of 41 outcomes recorded: 0 by request id, 0 by diamond, 40 unmatched; scored with v1"))
        #expect(ingest.stdout.contains("line 42: sold_price must be a positive number"))
        let show = try await CLIRunner.run(["outcomes", "show"], in: dir)
        #expect(show.status == 0)
        #expect(show.stdout.split(separator: "\n").last?.hasPrefix("1        40") == true, "\(show.stdout)")
        let list = try await CLIRunner.run(["models", "list"], in: dir)
        #expect(list.stdout.contains("live RMSE"))
        let missing = try await CLIRunner.run(["outcomes", "ingest", "nope.csv"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("nope.csv"))
    }
}
