import Foundation
import Testing

@testable import ArtifactStore

@Suite struct RolloutAliasTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-rollout-\(UUID().uuidString)")

    func store(versions: Int) throws -> ArtifactStore {
        let store = try ArtifactStore.open(at: dir.path)
        let dataset = try store.putDataset(name: "d", cleanCSV: [1], counts: RowCounts(rowsIn: 1, clean: 1, quarantined: 0))
        for i in 0..<versions {
            _ = try store.putModel(name: "m", modelBytes: [UInt8(i)], dataset: dataset.reference)
        }
        return store
    }

    @Test func canaryTakesAShareAndEnds() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try store(versions: 2)
        try store.promote(name: "m", version: 1)
        var record = try store.promote(name: "m", version: 2, to: .canary, reason: "try v2", percent: 25)
        #expect(record.canary == 2 && record.canaryPercent == 25 && record.production == 1)
        #expect(record.history.last?.percent == 25)
        // A new canary without a share keeps the running one's.
        record = try store.promote(name: "m", version: 2, to: .canary)
        #expect(record.canaryPercent == 25)
        record = try store.clear(name: "m", alias: .canary, reason: "worse")
        #expect(record.canary == nil && record.canaryPercent == nil)
        #expect(record.history.last?.action == .clear && record.history.last?.to == nil
            && record.history.last?.from == 2 && record.history.last?.reason == "worse")
        // What was cleared stays cleared for the reader.
        #expect(try store.aliases(name: "m").canary == nil)
    }

    @Test func badSharesAndAliasesAreRefused() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try store(versions: 2)
        for percent in [0, 101, -5] {
            #expect(throws: StoreError.self) { try store.promote(name: "m", version: 2, to: .canary, percent: percent) }
        }
        #expect(throws: StoreError.self) { try store.promote(name: "m", version: 2, to: .production, percent: 10) }
        #expect(throws: StoreError.self) { try store.clear(name: "m", alias: .production) }
        // Nothing to end.
        #expect(throws: StoreError.self) { try store.clear(name: "m", alias: .shadow) }
        #expect(try store.aliases(name: "m") == AliasRecord())
    }

    @Test func promotingTheCanaryToProductionEndsTheRollout() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try store(versions: 2)
        try store.promote(name: "m", version: 1)
        try store.promote(name: "m", version: 2, to: .canary, percent: 50)
        try store.promote(name: "m", version: 2, to: .shadow)
        let record = try store.promote(name: "m", version: 2, reason: "canary held")
        #expect(record.production == 2 && record.canary == nil && record.shadow == nil && record.canaryPercent == nil)
        #expect(record.history.suffix(2).allSatisfy { $0.action == .clear && $0.reason == "v2 promoted to production" })
        // Production's rollback stack is unaffected by the rollout moves.
        #expect(record.rollbackStack(for: .production) == [1, 2])
    }

    @Test func aliasFilesFromBeforeRolloutsStillRead() throws {
        let json = """
            {"production":1,"history":[{"alias":"production","to":1,"at":"2026-11-01T00:00:00Z","action":"promote"}]}
            """
        let record = try ManifestCoding.decode(AliasRecord.self, from: Array(json.utf8), key: "aliases/m.json")
        #expect(record.production == 1 && record.canary == nil && record.shadow == nil)
        #expect(record.history.first?.to == 1)
    }
}
