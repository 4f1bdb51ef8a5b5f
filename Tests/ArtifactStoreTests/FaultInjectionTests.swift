import Foundation
import Testing
@testable import ArtifactStore

#if canImport(Glibc)
import Glibc
#endif

/// Write errors (disk full, I/O errors) injected through the file layer, at every call of a kind.
@Suite struct FaultInjectionTests {
    struct Fault: Sendable, CustomTestStringConvertible {
        var op: FaultyFileLayer.Op
        var errno: Int32
        var testDescription: String { "\(op) fails with \(String(cString: strerror(errno)))" }
    }

    static let faults: [Fault] = [
        Fault(op: .write, errno: ENOSPC), Fault(op: .create, errno: ENOSPC), Fault(op: .mkdir, errno: ENOSPC),
        Fault(op: .sync, errno: EIO), Fault(op: .rename, errno: EIO), Fault(op: .syncDir, errno: EIO),
    ]

    enum Write: CaseIterable {
        case dataset, newDataset, model, promote

        func perform(_ store: ArtifactStore, _ i: Int) throws {
            let counts = RowCounts(rowsIn: 2, clean: 2, quarantined: 0)
            switch self {
            case .dataset:
                try store.putDataset(
                    name: "diamonds", cleanCSV: Fixtures.bytes(70_000 + i, seed: UInt64(300 + i)),
                    reportJSON: Array("{\"i\": \(i)}".utf8), counts: counts)
            case .newDataset:
                try store.putDataset(name: "new-\(i)", cleanCSV: Fixtures.bytes(1000 + i, seed: UInt64(600 + i)), counts: counts)
            case .model:
                try store.putModel(
                    name: "price", modelBytes: Fixtures.bytes(9000 + i, seed: UInt64(900 + i)),
                    dataset: DatasetReference(name: "diamonds", version: 1))
            case .promote:
                try store.promote(name: "price", version: 1 + i % 2, to: .staging, reason: "fault \(i)")
            }
        }
    }

    @Test(arguments: faults)
    func injectedErrorLeavesTheStoreAsItWas(fault: Fault) throws {
        let dir = TemporaryDirectory("fault")
        let files = FaultyFileLayer()
        // 64 KiB chunks, so a 70 KB blob takes several writes.
        let store = try ArtifactStore.open(at: dir.path, files: files, configuration: .init(chunkSize: 64 * 1024))
        try Fixtures.seed(store)
        var injected = 0
        var i = 0
        for write in Write.allCases {
            // Count this kind of call in a clean run of the same kind of write.
            files.arm()
            try write.perform(store, i)
            i += 1
            let calls = files.trace.filter { $0.op == fault.op }.count
            for nth in 0..<calls {
                i += 1
                let before = Fixtures.snapshot(dir.path, excludingBlobs: true)
                let blobsBefore = Set(try store.backend.listBlobs())
                let aliasesBefore = try store.aliases(name: "price")
                files.arm()
                files.fail(fault.op, nth: nth + 1, errno: fault.errno)
                let context = "\(write) with call \(nth + 1) of \(calls) failing"
                let error: StoreError
                do {
                    try write.perform(store, i)
                    // Fine only if this run made fewer such calls (e.g. a blob's directory existed).
                    #expect(!files.failureFired, "\(context): the failure was swallowed")
                    continue
                } catch let e as StoreError {
                    error = e
                }
                injected += 1
                #expect(error.code == (fault.errno == ENOSPC ? .diskFull : .io), "\(context): \(error)")
                #expect(error.message.contains(String(cString: strerror(fault.errno))), "\(context): \(error.message)")
                // Manifests, aliases, temp files: exactly as before.
                #expect(Fixtures.snapshot(dir.path, excludingBlobs: true) == before, "\(context)")
                #expect(try store.aliases(name: "price") == aliasesBefore)
                // Blobs that did land are whole, and nothing references them (gc will take them).
                let newBlobs = Set(try store.backend.listBlobs()).subtracting(blobsBefore)
                let collectable = Set(try store.gc(gracePeriod: .zero).collected.map(\.digest))
                for blob in newBlobs {
                    #expect(throws: Never.self) { _ = try store.readBlob(blob) }
                    #expect(collectable.contains(blob), "\(context): new blob \(blob) is referenced")
                }
            }
            // And the store carries on.
            files.disarm()
            try write.perform(store, i)
            i += 1
        }
        #expect(injected > 0)
        #expect(try Fixtures.problems(in: store) == [])
    }
}
