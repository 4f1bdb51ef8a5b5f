import Foundation
import Testing
@testable import ArtifactStore

/// `openReadOnly`: reads everything, writes nothing, creates nothing.
@Suite struct ReadOnlyTests {
    @Test func readsWorkAndWritesAreRefused() throws {
        let dir = TemporaryDirectory()
        let (dataset, models) = try Fixtures.seed(try ArtifactStore.open(at: dir.path))
        // A dead writer's leftovers: still reported, not removed.
        try FileManager.default.createDirectory(atPath: dir.path + "/tmp/deadbeef", withIntermediateDirectories: false)
        #expect(FileManager.default.createFile(atPath: dir.path + "/tmp/deadbeef/x.blob", contents: Data([1])))
        let before = try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted()

        let store = try ArtifactStore.openReadOnly(at: dir.path)
        #expect(try store.models(name: "price").map(\.version) == models.map(\.version))
        #expect(try store.dataset(name: dataset.name, version: dataset.version).cleanBlob == dataset.cleanBlob)
        let report = try store.verify()
        #expect(report.ok && report.orphanTempFiles == [dir.path + "/tmp/deadbeef/x.blob"])
        #expect(throws: StoreError.self) { try store.promote(name: "price", version: 1) }
        #expect(throws: StoreError.self) { try store.gc(gracePeriod: .zero, dryRun: false) }
        do {
            _ = try store.promote(name: "price", version: 1)
        } catch let error as StoreError {
            #expect(error.code == .readOnly)
        }
        #expect(try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted() == before)
    }

    @Test func s3ReadsWorkAndWritesAreRefused() throws {
        guard let harness = try Harness.make(.s3) else { return }
        let (dataset, models) = try Fixtures.seed(try harness.open())
        let before = try harness.rawObjects()
        let store = try harness.openReadOnly()
        #expect(try store.models(name: "price").map(\.version) == models.map(\.version))
        #expect(try store.readBlob(dataset.cleanBlob) == Fixtures.bytes(5000, seed: 1))
        #expect(try store.verify().ok)
        for write in [{ _ = try store.promote(name: "price", version: 1) }, { _ = try store.gc(gracePeriod: .zero, dryRun: false) },
                      { _ = try store.putBlob([1, 2, 3]) }] as [() throws -> Void] {
            #expect { try write() } throws: { ($0 as? StoreError)?.code == .readOnly }
        }
        #expect(try harness.rawObjects() == before, "nothing written, not even the lock")
    }

    @Test func aMissingS3StoreIsNotFound() throws {
        guard let harness = try Harness.make(.s3) else { return }
        #expect { try harness.openReadOnly() } throws: { ($0 as? StoreError)?.code == .notFound }
        #expect(try harness.rawObjects().isEmpty)
    }

    @Test func aMissingStoreIsNotCreated() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/nothing-here"
        #expect { try ArtifactStore.openReadOnly(at: path) } throws: { ($0 as? StoreError)?.code == .notFound }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
