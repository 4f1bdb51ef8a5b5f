import Foundation
import Testing
@testable import S3Store

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

    /// The same commands on an S3 store (`--store s3://…`, endpoint and credentials from the
    /// AWS_* variables), against the endpoint in LOUPE_TEST_S3_ENDPOINT (moto under scripts/test).
    @Test func theStoreCommandsWorkOnAnS3Store() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["LOUPE_TEST_S3_ENDPOINT"], !endpoint.isEmpty else {
            #expect(environment["CI"] != "true", "CI=true but LOUPE_TEST_S3_ENDPOINT is not set")
            print("⚠️  SKIPPING the S3 store CLI test: LOUPE_TEST_S3_ENDPOINT is not set (scripts/test starts moto_server)")
            return
        }
        let aws = [
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIACLITEST", "AWS_SECRET_ACCESS_KEY": "cli-secret-value",
            "AWS_REGION": "us-east-1",
        ]
        let store = "s3://loupe-cli-test/run-\(UUID().uuidString.prefix(8).lowercased())"
        let s3 = try S3Configuration.fromEnvironment(url: store, environment: aws)
        let client = S3Client(configuration: s3)
        _ = try client.send(S3Request(.PUT, key: nil))  // the bucket (exists already: 409, fine)
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sampleCSV(rows: 400).write(to: dir.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
        func loupe(_ arguments: String...) async throws -> CLIRunner.Output {
            try await CLIRunner.run(arguments + ["--store", store], in: dir, environment: aws)
        }
        let ingest = try await loupe("ingest", "a.csv", "--dataset", "stones")
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("stored dataset stones v1"), "\(ingest.stdout)")
        let train = try await loupe(
            "train", "--promote", "--dataset", "stones", "--rounds", "10", "--num-leaves", "7", "--early-stopping", "0",
            "--calibration-fraction", "0.2", "--threads", "1", "--quiet")
        #expect(train.status == 0, "\(train.stderr)")
        let list = try await loupe("models", "list")
        #expect(list.stdout.contains("stones@1") && list.stdout.contains("production"), "\(list.stdout)")
        let verify = try await loupe("store", "verify")
        #expect(verify.status == 0 && verify.stdout.contains(": ok"), "\(verify.stdout) \(verify.stderr)")
        let du = try await loupe("store", "du")
        #expect(du.status == 0 && du.stdout.contains("datasets") && du.stdout.contains("models"), "\(du.stdout)")
        let gc = try await loupe("store", "gc", "--grace-hours", "0", "--apply")
        #expect(gc.status == 0 && gc.stdout.contains("removed: 0 blobs"), "\(gc.stdout) \(gc.stderr)")
        // Local state (what is not in the store) goes to the state directory, not the cwd's loupe-store.
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("loupe-store").path))

        // A damaged blob: verify names its s3:// location and fails.
        let blobs = try S3Backend(configuration: s3, readOnly: true).listBlobs()
        let victim = try #require(blobs.first)
        let key = s3.prefix + "blobs/sha256/\(victim.hex.prefix(2))/\(victim.hex)"
        var bytes = try client.send(S3Request(.GET, key: key)).body
        bytes[bytes.count / 2] ^= 0xFF
        _ = try client.send(S3Request(.PUT, key: key, body: bytes))
        let damaged = try await loupe("store", "verify")
        #expect(damaged.status != 0)
        #expect(damaged.stdout.contains("corrupt blob") && damaged.stdout.contains("s3://loupe-cli-test/"), "\(damaged.stdout)")
        // Wrong endpoint: one clear line naming the bucket, never the secret.
        var down = aws
        down["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
        let unreachable = try await CLIRunner.run(["store", "du", "--store", store], in: dir, environment: down)
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("loupe-cli-test") && !unreachable.stderr.contains("cli-secret-value"), "\(unreachable.stderr)")
        for key in try S3Backend(configuration: s3, readOnly: true).listObjects(prefix: s3.prefix, delimiter: false, "cleanup").objects {
            _ = try? client.send(S3Request(.DELETE, key: key.key))
        }
    }
}
