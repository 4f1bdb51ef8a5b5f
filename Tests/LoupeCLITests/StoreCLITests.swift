import Foundation
import Testing

@Suite(.serialized) struct StoreCLITests {
    @Test func ingestTrainPromoteRollbackAndPredictFromTheStore() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 800).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        try sampleCSV(rows: 300, seed: 9).write(to: dir.appendingPathComponent("b.csv"), atomically: true, encoding: .utf8)

        let ingest = try await CLIRunner.run(["ingest", "a.csv", "--dataset", "stones"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("stored dataset stones v1: 800 rows"))
        // Appending a file that repeats the first one's rows adds only the new ones.
        let both = sampleCSV(rows: 800) + sampleCSV(rows: 300, seed: 9).split(separator: "\n").dropFirst().joined(separator: "\n") + "\n"
        try both.write(to: dir.appendingPathComponent("both.csv"), atomically: true, encoding: .utf8)
        let append = try await CLIRunner.run(["ingest", "both.csv", "--dataset", "stones", "--append"], in: dir)
        #expect(append.status == 0, "\(append.stderr)")
        #expect(append.stdout.contains("appended to v1: 800 rows were already there"))
        #expect(append.stdout.contains("stored dataset stones v2: 1100 rows"))

        let training = ["--dataset", "stones", "--rounds", "20", "--num-leaves", "7", "--early-stopping", "0",
                        "--calibration-fraction", "0.2", "--threads", "1", "--quiet"]
        #expect(try await CLIRunner.run(["train", "--promote"] + training, in: dir).status == 0)
        #expect(try await CLIRunner.run(["train"] + training, in: dir).status == 0)
        let promote = try await CLIRunner.run(["models", "promote", "2", "--reason", "better"], in: dir)
        #expect(promote.status == 0, "\(promote.stderr)")
        let list = try await CLIRunner.run(["models", "list"], in: dir)
        #expect(list.stdout.contains("stones@2"))
        #expect(list.stdout.split(separator: "\n").last?.hasSuffix("production") == true)

        let rollback = try await CLIRunner.run(["models", "rollback"], in: dir)
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(rollback.stdout.contains("v2 → v1"))
        let again = try await CLIRunner.run(["models", "rollback"], in: dir)
        #expect(again.status != 0)
        #expect(again.stderr.split(separator: "\n").count == 1)

        let show = try await CLIRunner.run(["models", "show", "diamonds@production"], in: dir)
        #expect(show.status == 0)
        #expect(show.stdout.contains("\"version\" : 1"))

        let predict = try await CLIRunner.run([
            "predict", "diamonds@production", "--carat", "1", "--cut", "Ideal", "--color", "G", "--clarity", "VS1",
            "--depth", "61.8", "--table", "56", "--x", "6.43", "--y", "6.47", "--z", "3.99"], in: dir)
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stdout.hasPrefix("$"))

        let verify = try await CLIRunner.run(["store", "verify"], in: dir)
        #expect(verify.status == 0)
        #expect(verify.stdout.contains(": ok"))
        let du = try await CLIRunner.run(["store", "du"], in: dir)
        #expect(du.stdout.contains("datasets"))
        let gc = try await CLIRunner.run(["store", "gc"], in: dir)
        #expect(gc.stdout.contains("would remove"))
    }

    @Test func verifyFailsOnADamagedBlob() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 200).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        #expect(try await CLIRunner.run(["ingest", "a.csv", "--store", "s"], in: dir).status == 0)
        let blobs = dir.appendingPathComponent("s/blobs/sha256")
        let file = try #require(FileManager.default.enumerator(at: blobs, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.first { !$0.hasDirectoryPath && $0.lastPathComponent.count == 64 })
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: file)
        let verify = try await CLIRunner.run(["store", "verify", "--store", "s"], in: dir)
        #expect(verify.status != 0)
        #expect(verify.stdout.contains("corrupt blob"))
    }

    @Test func missingModelIsAClearError() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try await CLIRunner.run(["predict", "nothing@3", "--csv", "x.csv"], in: dir)
        #expect(result.status != 0)
        #expect(result.stderr.contains("nothing"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
