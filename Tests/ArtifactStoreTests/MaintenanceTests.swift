import Foundation
import Testing
@testable import ArtifactStore

@Suite struct MaintenanceTests {
    func blobPath(_ dir: TemporaryDirectory, _ digest: BlobDigest) -> String {
        dir.path + "/blobs/sha256/" + digest.hex.prefix(2) + "/" + digest.hex
    }

    @Test(arguments: BackendKind.allCases) func verifyPassesOnAHealthyStore(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let (dataset, models) = try Fixtures.seed(store)
        let report = try store.verify()
        #expect(report.ok)
        #expect(report.blobsChecked == dataset.blobs.count + models.flatMap(\.blobs).count)
        #expect(report.documentsChecked == 4)  // 1 dataset, 2 models, 1 alias file
        #expect(report.orphanTempFiles.isEmpty)
    }

    @Test(arguments: BackendKind.allCases) func verifyReportsMissingBlobsAndDanglingReferences(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let (dataset, models) = try Fixtures.seed(store)
        try harness.rawDelete(Harness.blobKey(models[0].modelBlob))
        try harness.rawDelete("datasets/diamonds/1.json")
        let report = try store.verify()
        #expect(!report.ok)
        #expect(report.missingBlobs == [.init(digest: models[0].modelBlob, referencedBy: ["models/price/1.json"])])
        #expect(Set(report.brokenDocuments.map(\.key)) == ["models/price/1.json", "models/price/2.json"])
        #expect(report.brokenDocuments.allSatisfy { $0.message.contains("dataset \(dataset.reference)") })
        // An alias pointing at a version that is gone.
        try harness.rawDelete("models/price/2.json")
        #expect(try store.verify().brokenDocuments.contains { $0.key == "aliases/price.json" && $0.message.contains("version 2") })
    }

    @Test func verifyReportsOrphanTempFilesOfDeadWriters() throws {
        let dir = TemporaryDirectory()
        let store = try ArtifactStore.open(at: dir.path)
        // A dead writer's session: a directory with a partial file, its lock file not held.
        try FileManager.default.createDirectory(atPath: dir.path + "/tmp/deadbeef", withIntermediateDirectories: false)
        #expect(FileManager.default.createFile(atPath: dir.path + "/tmp/deadbeef/x.blob", contents: Data([1, 2, 3])))
        #expect(FileManager.default.createFile(atPath: dir.path + "/tmp/deadbeef.lock", contents: nil))
        let report = try store.verify()
        #expect(report.ok, "orphans are garbage, not damage")
        #expect(report.orphanTempFiles == [dir.path + "/tmp/deadbeef/x.blob"])
        // The live session of `store` is not an orphan, and opening again sweeps the dead one.
        let again = try ArtifactStore.open(at: dir.path)
        #expect(try again.verify().orphanTempFiles.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/tmp/deadbeef"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/tmp/deadbeef.lock"))
        _ = store
    }

    @Test func sweepLeavesALiveWritersTempFilesAlone() throws {
        let dir = TemporaryDirectory()
        let store = try ArtifactStore.open(at: dir.path)
        let upload = try store.backend.stageBlob()
        try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try upload.write($0) }
        // Another instance (as another process would) opens and sweeps: the upload survives.
        let other = try ArtifactStore.open(at: dir.path)
        #expect(try other.verify().orphanTempFiles.isEmpty)
        #expect(Fixtures.tempFiles(dir.path).count == 1)
        upload.abort()
        #expect(Fixtures.tempFiles(dir.path).isEmpty)
        _ = store
    }

    /// S3 cannot backdate an object, so there: no grace keeps every orphan, zero grace takes
    /// them all, referenced blobs stay either way, and a dry run changes nothing.
    @Test func gcOnS3KeepsReferencedBlobsAndHonoursTheGracePeriod() throws {
        guard let harness = try Harness.make(.s3) else { return }
        let store = try harness.open()
        let (dataset, models) = try Fixtures.seed(store)
        let referenced = Set(dataset.blobs + models.flatMap(\.blobs))
        let orphans = [try store.putBlob(Fixtures.bytes(1000, seed: 100)), try store.putBlob(Fixtures.bytes(1000, seed: 101))]
        let kept = try store.gc(gracePeriod: .seconds(86_400), dryRun: false)
        #expect(kept.collected.isEmpty && Set(kept.tooYoung) == Set(orphans) && kept.referenced == referenced.count)
        let before = try harness.rawObjects()
        let dry = try store.gc(gracePeriod: .zero)
        #expect(Set(dry.collected.map(\.digest)) == Set(orphans))
        #expect(try harness.rawObjects().filter { !$0.key.hasPrefix("lock") } == before.filter { !$0.key.hasPrefix("lock") })
        let real = try store.gc(gracePeriod: .zero, dryRun: false)
        #expect(Set(real.collected.map(\.digest)) == Set(orphans) && real.bytesCollected > 0)
        #expect(Set(try store.backend.listBlobs()) == referenced)
        #expect(try store.verify().ok)
    }

    @Test func gcDryRunDeletesNothingAndRealRunOnlyOldUnreferencedBlobs() throws {
        let dir = TemporaryDirectory()
        let store = try ArtifactStore.open(at: dir.path)
        let (dataset, models) = try Fixtures.seed(store)
        let referenced = Set(dataset.blobs + models.flatMap(\.blobs))
        let oldOrphan = try store.putBlob(Fixtures.bytes(1000, seed: 100))
        let youngOrphan = try store.putBlob(Fixtures.bytes(1000, seed: 101))
        let oldReferenced = models[0].modelBlob
        let twoDaysAgo = Date().timeIntervalSince1970 - 2 * 86_400
        for digest in [oldOrphan, oldReferenced] { try PosixFileLayer().touch(blobPath(dir, digest), time: twoDaysAgo) }
        let before = Fixtures.snapshot(dir.path)

        let dry = try store.gc(gracePeriod: .seconds(86_400))
        #expect(dry.dryRun)
        #expect(dry.collected.map(\.digest) == [oldOrphan])
        #expect(dry.tooYoung == [youngOrphan])
        #expect(dry.referenced == referenced.count)
        #expect(dry.blobsExamined == referenced.count + 2)
        #expect(Fixtures.snapshot(dir.path) == before, "a dry run changes nothing")

        let real = try store.gc(gracePeriod: .seconds(86_400), dryRun: false)
        #expect(real.collected.map(\.digest) == [oldOrphan])
        #expect(real.bytesCollected > 0)
        #expect(try !store.containsBlob(oldOrphan))
        #expect(try store.containsBlob(youngOrphan))
        #expect(try store.containsBlob(oldReferenced))
        #expect(try store.verify().ok)
        // With no grace period the young orphan goes too; referenced blobs never do.
        let all = try store.gc(gracePeriod: .zero, dryRun: false)
        #expect(all.collected.map(\.digest) == [youngOrphan])
        #expect(Set(try store.backend.listBlobs()) == referenced)
    }

    @Test(arguments: BackendKind.allCases) func gcRefusesWhenAManifestCannotBeRead(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        try Fixtures.seed(store)
        try harness.rawWrite("models/price/1.json", Array("{".utf8))
        let error = try #require(throws: StoreError.self) { try store.gc(gracePeriod: .zero, dryRun: false) }
        #expect(error.code == .corruptManifest)
        #expect(error.message.contains("models/price/1.json"))
        #expect(try store.backend.listBlobs().count == 5)
    }

    @Test(arguments: BackendKind.allCases) func duNumbersAddUp(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let (dataset, models) = try Fixtures.seed(store)
        let orphan = Fixtures.bytes(12_345, seed: 55)
        try store.putBlob(orphan)
        // A streamed blob without a size in its header: du must decompress to count it.
        try store.putBlob { try $0.write(Fixtures.bytes(777, seed: 56)) }
        let usage = try store.du()
        #expect(usage.datasets.count == dataset.blobs.count)
        #expect(usage.models.count == models.count)
        #expect(usage.other.count == 2)
        #expect(usage.other.rawBytes == 12_345 + 777)
        let rawDatasets = 5000 + Int64("row,reason\n3,carat <= 0\n".utf8.count) + Int64(Fixtures.report.count)
        #expect(usage.datasets.rawBytes == rawDatasets)
        #expect(usage.models.rawBytes == 40_000)
        #expect(usage.blobs.count == usage.datasets.count + usage.models.count + usage.other.count)
        #expect(usage.blobs.rawBytes == usage.datasets.rawBytes + usage.models.rawBytes + usage.other.rawBytes)
        #expect(usage.datasets.compressionRatio > 1)
        // Stored bytes equal what is stored, object by object.
        var blobBytes: Int64 = 0
        var documentBytes: Int64 = 0
        var documents = 0
        for (relative, size) in try harness.rawObjects() {
            if relative.hasPrefix("blobs/") { blobBytes += size }
            if relative.hasSuffix(".json") { documentBytes += size; documents += 1 }
        }
        #expect(usage.blobs.storedBytes == blobBytes)
        #expect(usage.documentBytes == documentBytes)
        #expect(usage.documentCount == documents)
        #expect(usage.totalStoredBytes == blobBytes + documentBytes)
    }
}
