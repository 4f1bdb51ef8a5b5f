import ArtifactStore
import Foundation
import Testing
import TreeTraining
@testable import Catalog

@Suite struct CatalogTests {
    func temporaryStore() throws -> (Catalog, URL) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-catalog-\(UUID().uuidString)")
        return (try Catalog.open(at: url.path), url)
    }

    static let header = "carat,cut,color,clarity,depth,table,price,x,y,z\n"
    static let rows = [
        "0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43",
        "0.21,Premium,E,SI1,59.8,61,326,3.89,3.84,2.31",
        "0.31,Good,J,SI2,63.3,58,335,4.34,4.35,2.75",
        "0.5,Ideal,E,SI1,61.5,55,-1,5.1,5.1,3.14",  // quarantined: price
    ]

    @Test func theDefaultDatasetStartsAsTheBundledData() throws {
        let (catalog, url) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: url) }
        let first = try catalog.latestDataset()
        #expect(first.version == 1)
        #expect(first.source == "bundled")
        #expect(first.counts.rowsIn == 53_940)
        #expect(first.counts.clean + first.counts.quarantined == 53_940)
        #expect(try catalog.latestDataset().version == 1)  // not ingested twice
        #expect(try catalog.table(of: first).count == first.counts.clean)
        #expect { try catalog.latestDataset("other") } throws: { "\($0)".contains("loupe ingest") }
    }

    @Test func ingestKeepsQuarantineAndAppendDropsRepeats() throws {
        let (catalog, url) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: url) }
        let v1 = try catalog.ingest(csv: Array((Self.header + Self.rows.joined(separator: "\n")).utf8), dataset: "s", source: "a")
        #expect(v1.manifest.counts == RowCounts(rowsIn: 4, clean: 3, quarantined: 1))
        #expect(v1.manifest.quarantineBlob != nil)
        let more = Self.header + Self.rows[0] + "\n0.7,Very Good,G,VS2,62,57,2500,5.7,5.72,3.54\n"
        let v2 = try catalog.ingest(csv: Array(more.utf8), dataset: "s", source: "b", append: true)
        #expect(v2.duplicatesOfEarlierRows == 1)
        #expect(v2.manifest.parent == 1)
        #expect(v2.manifest.counts.clean == 4)
        let table = try catalog.table(of: v2.manifest)
        #expect(table.count == 4)
        #expect(table.price == [326, 326, 335, 2500])
    }

    @Test func registerAndResolveModels() throws {
        let (catalog, url) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: url) }
        let dataset = try catalog.ingest(csv: Array(sampleRows(400).utf8), dataset: "s", source: "t").manifest
        let table = try catalog.table(of: dataset)
        let config = TrainingConfiguration(rounds: 5, numLeaves: 4, minDataInLeaf: 5, earlyStoppingRounds: 0,
                                           calibrationFraction: 0.2, threads: 1)
        let trained = try Trainer(configuration: config).train(table)
        let m1 = try catalog.register(trained, dataset: dataset.reference)
        let m2 = try catalog.register(trained, dataset: dataset.reference)
        #expect(m1.version == 1 && m2.version == 2 && m2.parent == 1)
        #expect(m1.metrics["rmse"] != nil && m1.metrics["coverage"] != nil)
        #expect(m1.hyperparameters["numLeaves"] == .number(4))
        #expect(try catalog.manifest(for: ModelSpec()).version == 2)  // no production: the newest
        _ = try catalog.store.promote(name: "diamonds", version: 1)
        #expect(try catalog.manifest(for: ModelSpec()).version == 1)
        #expect(try catalog.manifest(for: ModelSpec(parsing: "diamonds@2")!).version == 2)
        #expect(try catalog.ensemble(of: m1) == trained.model)
        #expect { try catalog.manifest(for: ModelSpec(parsing: "diamonds@staging")!) } throws: { "\($0)".contains("staging") }
    }

    @Test func promoteAndRollbackRefuseAVersionThatDoesNotLoad() throws {
        let (catalog, url) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: url) }
        let dataset = try catalog.ingest(csv: Array(sampleRows(400).utf8), dataset: "s", source: "t").manifest
        let table = try catalog.table(of: dataset)
        func model(rounds: Int) throws -> ModelManifest {
            let config = TrainingConfiguration(rounds: rounds, numLeaves: 4, minDataInLeaf: 5, earlyStoppingRounds: 0,
                                               calibrationFraction: 0.2, threads: 1)
            return try catalog.register(try Trainer(configuration: config).train(table), dataset: dataset.reference)
        }
        let good = try model(rounds: 5)
        let damaged = try model(rounds: 6)
        try catalog.promote(name: "diamonds", version: damaged.version)
        try catalog.promote(name: "diamonds", version: good.version)
        // What a damaged disk leaves: the blob no longer decodes.
        try Data("not a zstd frame".utf8).write(to: URL(fileURLWithPath: catalog.store.backend.location(of: damaged.modelBlob)))
        #expect { try catalog.promote(name: "diamonds", version: damaged.version) } throws: {
            "\($0)".contains("v\(damaged.version) cannot be loaded, so it is not promoted")
        }
        #expect { try catalog.rollback(name: "diamonds") } throws: { "\($0)".contains("cannot be loaded") }
        #expect(try catalog.store.aliases(name: "diamonds").production == good.version, "the alias did not move")
    }

    @Test func specsParse() {
        #expect(ModelSpec(parsing: "diamonds") == ModelSpec())
        #expect(ModelSpec(parsing: "@3") == ModelSpec(selector: .version(3)))
        #expect(ModelSpec(parsing: "x@production") == ModelSpec(name: "x", selector: .alias(.production)))
        #expect(ModelSpec(parsing: "x@0") == nil)
        #expect(ModelSpec(parsing: "x@latest") == nil)
        #expect(ModelSpec(parsing: "Bad Name") == nil)
    }

    func sampleRows(_ n: Int) -> String {
        var lines = [Self.header.dropLast()].map(String.init)
        for i in 0..<n {
            let carat = 0.3 + Double(i % 150) / 100
            let x = (6.4 * carat.squareRoot() * 100).rounded() / 100
            let z = (x * 0.618 * 100).rounded() / 100
            let depth = ((100 * z / x) * 10).rounded() / 10
            lines.append("\(carat),Ideal,\(["E", "G", "J"][i % 3]),SI1,\(depth),57,\(Int(4000 * carat * carat) + i % 7),\(x),\(x),\(z)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }
}

@Suite struct CatalogModelSizeTests {
    @Test func aThousandTreeModelRoundTripsBitExactly() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-catalog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let catalog = try Catalog.open(at: url.path)
        let dataset = try catalog.ingest(csv: Array(CatalogTests().sampleRows(300).utf8), dataset: "s", source: "t").manifest
        let config = TrainingConfiguration(rounds: 1000, learningRate: 0.01, numLeaves: 4, minDataInLeaf: 5,
                                           earlyStoppingRounds: 0, calibrationFraction: 0.1, threads: 1)
        let trained = try Trainer(configuration: config).train(try catalog.table(of: dataset))
        #expect(trained.model.trees.count == 1000)
        let manifest = try catalog.register(trained, dataset: dataset.reference)
        let bytes = try catalog.store.readBlob(manifest.modelBlob)
        #expect(bytes == trained.model.serialized())
        #expect(try catalog.ensemble(of: manifest) == trained.model)
    }
}
