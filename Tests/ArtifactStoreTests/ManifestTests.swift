import Foundation
import Testing
@testable import ArtifactStore

@Suite struct ManifestTests {
    @Test(arguments: BackendKind.allCases) func versionsAreNumberedPerName(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let counts = RowCounts(rowsIn: 1, clean: 1, quarantined: 0)
        var seen: [Int] = []
        for i in 0..<3 {
            seen.append(try store.putDataset(name: "a", cleanCSV: [UInt8(i)], counts: counts).version)
        }
        #expect(seen == [1, 2, 3])
        #expect(try store.putDataset(name: "b", cleanCSV: [9], counts: counts).version == 1)
        // The same bytes again still make a new version (a manifest per registration).
        #expect(try store.putDataset(name: "a", cleanCSV: [0], counts: counts, parent: 1).version == 4)
        #expect(try store.datasetVersions(name: "a") == [1, 2, 3, 4])
        #expect(try store.datasetNames() == ["a", "b"])
        #expect(try store.latestDataset(name: "a")?.version == 4)
        #expect(try store.latestDataset(name: "nothing-yet") == nil)
        for version in 1...4 {
            #expect(try harness.rawRead("datasets/a/\(version).json") != nil)
        }
    }

    @Test(arguments: ["", "Diamonds", "-lead", ".hidden", "a/b", "a b", "ü", "../x", String(repeating: "a", count: 65)])
    func invalidNamesAreRejected(name: String) throws {
        let dir = TemporaryDirectory()
        let store = try ArtifactStore.open(at: dir.path)
        let counts = RowCounts(rowsIn: 0, clean: 0, quarantined: 0)
        let error = try #require(throws: StoreError.self) { try store.putDataset(name: name, cleanCSV: [], counts: counts) }
        #expect(error.code == .invalidName)
        #expect(error.message.contains("[a-z") || error.message.contains("lower-case"))
        #expect(throws: StoreError.self) { _ = try store.modelVersions(name: name) }
        #expect(throws: StoreError.self) { try store.promote(name: name, version: 1) }
        #expect(try store.backend.listDocuments(prefix: "datasets/").isEmpty)
    }

    @Test(arguments: ["a", "0", "diamonds-2024.v1_clean", String(repeating: "z", count: 64)])
    func validNamesAreAccepted(name: String) throws {
        #expect(ArtifactName.isValid(name))
    }

    @Test(arguments: BackendKind.allCases) func datasetManifestRoundTripsAndIsReadableJSON(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let (dataset, models) = try Fixtures.seed(store)
        #expect(try store.dataset(name: "diamonds", version: 1) == dataset)
        #expect(try store.model(name: "price", version: 2) == models[1])
        #expect(dataset.counts == RowCounts(rowsIn: 3, clean: 2, quarantined: 1))
        #expect(try store.readBlob(try #require(dataset.reportBlob)) == Fixtures.report)
        #expect(try store.readBlob(dataset.cleanBlob) == Fixtures.bytes(5000, seed: 1))
        // Pretty, sorted keys, ISO-8601 UTC dates, digests as sha256:<hex>.
        let text = String(decoding: try #require(try harness.rawRead("datasets/diamonds/1.json")), as: UTF8.self)
        #expect(text.contains("\"cleanBlob\" : \"sha256:\(dataset.cleanBlob.hex)\""))
        #expect(text.range(of: #""created" : "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ""#, options: .regularExpression) != nil)
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        #expect(keys == keys.sorted())
        let modelText = String(decoding: try #require(try harness.rawRead("models/price/1.json")), as: UTF8.self)
        #expect(modelText.contains("\"learning_rate\" : 0.1"))
        #expect(models[0].hyperparameters == ["rounds": 100, "learning_rate": 0.1])
    }

    @Test func jsonValueRoundTrips() throws {
        let value: JSONValue = ["a": [1, 2.5, "x", nil, true, ["b": false]], "big": .number(9_007_199_254_740_992), "s": "é\"\\"]
        let bytes = try ManifestCoding.encode(value)
        #expect(try ManifestCoding.decode(JSONValue.self, from: bytes, key: "test") == value)
    }

    @Test(arguments: BackendKind.allCases) func referencesAreCheckedBeforeTheManifestIsWritten(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let counts = RowCounts(rowsIn: 1, clean: 1, quarantined: 0)
        let absent = BlobDigest(of: [42])
        // A manifest may not point at a blob the store does not hold …
        var error = try #require(throws: StoreError.self) { try store.putDataset(name: "d", clean: absent, counts: counts) }
        #expect(error.code == .notFound && error.message.contains(absent.hex))
        // … nor at a parent or dataset version that does not exist.
        error = try #require(throws: StoreError.self) { try store.putDataset(name: "d", cleanCSV: [1], counts: counts, parent: 1) }
        #expect(error.code == .notFound)
        error = try #require(throws: StoreError.self) {
            try store.putModel(name: "m", modelBytes: [1], dataset: DatasetReference(name: "d", version: 1))
        }
        #expect(error.code == .notFound && error.message.contains("dataset d version 1"))
        #expect(try store.datasetNames().isEmpty && store.modelNames().isEmpty)
        let d = try store.putDataset(name: "d", cleanCSV: [1], counts: counts)
        error = try #require(throws: StoreError.self) {
            try store.putModel(name: "m", modelBytes: [1], dataset: d.reference, parent: 1)
        }
        #expect(error.code == .notFound)
        #expect(try store.putModel(name: "m", modelBytes: [1], dataset: d.reference).version == 1)
    }

    @Test(arguments: BackendKind.allCases) func invalidArgumentsAreRejected(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let d = try store.putDataset(name: "d", cleanCSV: [1], counts: RowCounts(rowsIn: 1, clean: 1, quarantined: 0))
        let cases: [() throws -> Void] = [
            { try store.putModel(name: "m", modelBytes: [1], dataset: d.reference, metrics: ["rmse": .nan]) },
            { try store.putModel(name: "m", modelBytes: [1], dataset: d.reference, hyperparameters: [1, 2]) },
            { try store.putModel(name: "m", modelBytes: [1], dataset: d.reference, hyperparameters: ["x": .number(.infinity)]) },
            { try store.putModel(name: "m", modelBytes: [1], dataset: d.reference, reportJSON: Array("{oops".utf8)) },
            { try store.putDataset(name: "d", cleanCSV: [1], counts: RowCounts(rowsIn: -1, clean: 0, quarantined: 0)) },
        ]
        for attempt in cases {
            let error = try #require(throws: StoreError.self) { try attempt() }
            #expect(error.code == .invalidArgument, "\(error)")
        }
        #expect(try store.modelNames().isEmpty)
        #expect(try store.datasetVersions(name: "d") == [1])
    }

    @Test(arguments: BackendKind.allCases) func unknownVersionIsNotFoundWithAHint(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        try Fixtures.seed(store)
        let error = try #require(throws: StoreError.self) { _ = try store.model(name: "price", version: 9) }
        #expect(error.code == .notFound)
        #expect(error.message.contains("versions are 1–2"), "\(error.message)")
    }

    @Test(arguments: BackendKind.allCases) func tornManifestIsACorruptManifestError(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        try Fixtures.seed(store)
        let text = try #require(try harness.rawRead("models/price/2.json"))
        try harness.rawWrite("models/price/2.json", Array(text.prefix(text.count / 2)))
        let error = try #require(throws: StoreError.self) { _ = try store.model(name: "price", version: 2) }
        #expect(error.code == .corruptManifest && error.message.contains("models/price/2.json"))
        let report = try store.verify()
        #expect(!report.ok)
        #expect(report.brokenDocuments.map(\.key) == ["models/price/2.json"])
    }

    @Test(arguments: BackendKind.allCases) func refusesAnUnknownStoreFormat(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        _ = try harness.open()
        try harness.rawWrite("store.json", Array("{\"format\": 99, \"kind\": \"loupe-artifact-store\"}".utf8))
        let error = try #require(throws: StoreError.self) { _ = try harness.open() }
        #expect(error.code == .unsupportedFormat)
    }

    @Test func largeBlobsUseTheFastLevel() throws {
        let config = ArtifactStore.Configuration(compressionLevel: 4, largeBlobCompressionLevel: 1, largeBlobThreshold: 1000)
        #expect(config.level(forSize: 1000) == 4)
        #expect(config.level(forSize: 1000, preferred: 11) == 11)
        #expect(config.level(forSize: 1001, preferred: 11) == 1)
        #expect(config.level(forSize: nil) == 4)
    }
}

@Suite struct AliasTests {
    @Test(arguments: BackendKind.allCases) func promoteMovesAliasesAndKeepsHistory(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        try Fixtures.seed(store)
        var record = try store.promote(name: "price", version: 2, to: .staging, reason: "candidate")
        #expect(record.production == 2 && record.staging == 2)
        #expect(record.history.count == 3)
        #expect(record.history.map(\.to) == [1, 2, 2])
        #expect(record.history.map(\.from) == [nil, 1, nil])
        #expect(record.history.map(\.reason) == ["first", "better", "candidate"])
        record = try store.aliases(name: "price")
        #expect(record.production == 2)
        #expect(try store.model(name: "price", alias: .production)?.version == 2)
        let text = String(decoding: try #require(try harness.rawRead("aliases/price.json")), as: UTF8.self)
        #expect(text.contains("\"production\" : 2") && text.contains("\"staging\" : 2") && text.contains("\"history\""))
        // Unknown versions cannot be promoted.
        let error = try #require(throws: StoreError.self) { try store.promote(name: "price", version: 3) }
        #expect(error.code == .notFound)
        #expect(try store.aliases(name: "price").history.count == 3)
        #expect(try store.aliases(name: "never-promoted") == AliasRecord())
    }

    @Test(arguments: BackendKind.allCases) func rollbackWalksBackThroughProductionVersions(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let (dataset, _) = try Fixtures.seed(store)
        try store.putModel(name: "price", modelBytes: [3], dataset: dataset.reference)
        try store.promote(name: "price", version: 3, reason: "newest")  // production: 1, 2, 3
        try store.promote(name: "price", version: 3, to: .staging)  // staging moves do not count
        var record = try store.rollback(name: "price", reason: "bad p99")
        #expect(record.production == 2)
        #expect(record.history.last == AliasMove(alias: .production, from: 3, to: 2, at: record.history.last!.at, reason: "bad p99", action: .rollback))
        record = try store.rollback(name: "price")
        #expect(record.production == 1)
        let error = try #require(throws: StoreError.self) { try store.rollback(name: "price") }
        #expect(error.code == .noRollbackTarget)
        #expect(error.message.contains("version 1"))
        #expect(try store.aliases(name: "price").production == 1)
        // A new promotion starts again from there.
        try store.promote(name: "price", version: 3)
        #expect(try store.rollback(name: "price").production == 1)
        #expect(try store.aliases(name: "price").history.count == 8)
    }

    @Test(arguments: BackendKind.allCases) func rollbackWithoutHistoryIsAClearError(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let error = try #require(throws: StoreError.self) { try store.rollback(name: "price") }
        #expect(error.code == .noRollbackTarget)
        #expect(error.message.contains("price"))
    }
}
