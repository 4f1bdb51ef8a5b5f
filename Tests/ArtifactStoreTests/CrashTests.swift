import Foundation
import Testing
@testable import ArtifactStore

/// Crashes at every step of a write, through the file layer: the "process" stops after `k`
/// mutating filesystem calls and does nothing more (not even its own cleanup).
@Suite struct CrashTests {
    enum Operation: String, CaseIterable, CustomTestStringConvertible {
        case putDataset, putDatasetNewName, putModel, promote, rollback

        var testDescription: String { rawValue }

        func perform(_ store: ArtifactStore) throws {
            let counts = RowCounts(rowsIn: 10, clean: 9, quarantined: 1)
            switch self {
            case .putDataset:
                try store.putDataset(
                    name: "diamonds", cleanCSV: Fixtures.bytes(3000, seed: 77), quarantineCSV: Array("r,why\n1,x\n".utf8),
                    reportJSON: Array("{\"v\": 2}".utf8), counts: counts, parent: 1)
            case .putDatasetNewName:
                try store.putDataset(name: "fresh", cleanCSV: Fixtures.bytes(3000, seed: 78), counts: counts)
            case .putModel:
                try store.putModel(
                    name: "price", modelBytes: Fixtures.bytes(5000, seed: 79),
                    dataset: DatasetReference(name: "diamonds", version: 1), reportJSON: Array("{\"trees\": 3}".utf8))
            case .promote:
                try store.promote(name: "price", version: 1, to: .staging, reason: "crash test")
            case .rollback:
                try store.rollback(name: "price", reason: "crash test")
            }
        }
    }

    /// An alias record with its move times erased (runs a second apart must still compare equal).
    static func undated(_ record: AliasRecord) -> AliasRecord {
        var record = record
        for i in record.history.indices { record.history[i].at = Date(timeIntervalSince1970: 0) }
        return record
    }

    /// Opens the store (each open sweeps dead writers' temp files) until the crashed session's
    /// files are gone. Another test in this process may be spawning a child at that moment: the
    /// child holds a copy of every descriptor, the dead session's flocked lock file included,
    /// until it execs (O_CLOEXEC), and a sweep then sees that writer as alive. CI caught it once.
    static func reopenOnceTheWriterIsGone(_ dir: String) throws -> ArtifactStore {
        for _ in 0..<50 {
            let store = try ArtifactStore.open(at: dir)
            if Fixtures.tempFiles(dir).isEmpty { return store }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try ArtifactStore.open(at: dir)
    }

    @Test(arguments: Operation.allCases)
    func crashAtEveryStepLeavesAConsistentStore(operation: Operation) throws {
        let base = TemporaryDirectory("crash")
        let seedDir = base.sub("seed")
        let seeded = try ArtifactStore.open(at: seedDir)
        try Fixtures.seed(seeded)
        let baselineAliases = Self.undated(try seeded.aliases(name: "price"))
        let baseline = Fixtures.snapshot(seedDir).filter { !$0.key.hasPrefix("tmp") }

        // A clean run, to count the steps and to know what the new state looks like.
        try Fixtures.copy(seedDir, to: base.sub("clean"))
        let counter = FaultyFileLayer()
        let clean = try ArtifactStore.open(at: base.sub("clean"), files: counter)
        counter.arm()
        try operation.perform(clean)
        let steps = counter.trace.filter { $0.op.isMutating }
        let newAliases = Self.undated(try clean.aliases(name: "price"))
        #expect(steps.count >= 5)

        var sawOld = false
        var sawNew = false
        var lastSteps: Set<FaultyFileLayer.Op> = []
        var crashedSteps: Set<FaultyFileLayer.Op> = []
        for k in 0..<steps.count {
            let dir = base.sub("crash-\(k)")
            try Fixtures.copy(seedDir, to: dir)
            do {
                let files = FaultyFileLayer()
                let doomed = try ArtifactStore.open(at: dir, files: files)
                files.arm(crashAfter: k)
                #expect(throws: (any Error).self) { try operation.perform(doomed) }
                #expect(files.crashed)
            }
            if k > 0 { lastSteps.insert(steps[k - 1].op) }
            crashedSteps.insert(steps[k].op)
            let context = "crash after step \(k) (\(k > 0 ? steps[k - 1].description : "before the first step"))"

            // Reopen: the dead session's temp files are swept, everything verifies.
            let store = try Self.reopenOnceTheWriterIsGone(dir)
            #expect(Fixtures.tempFiles(dir).isEmpty, "\(context): \(Fixtures.tempFiles(dir))")
            #expect(try Fixtures.problems(in: store) == [], "\(context)")

            // The previous state is intact (the alias file may hold the old or the new record).
            let now = Fixtures.snapshot(dir)
            for (file, hash) in baseline where file != "aliases/price.json" {
                #expect(now[file] == hash, "\(context): \(file) changed")
            }
            let aliases = Self.undated(try store.aliases(name: "price"))
            #expect(aliases == baselineAliases || aliases == newAliases, "\(context)")

            // Either nothing happened or all of it did.
            let isNew: Bool
            switch operation {
            case .putDataset: isNew = try store.datasetVersions(name: "diamonds") == [1, 2]
            case .putDatasetNewName: isNew = try store.datasetVersions(name: "fresh") == [1]
            case .putModel: isNew = try store.modelVersions(name: "price") == [1, 2, 3]
            case .promote, .rollback: isNew = aliases == newAliases
            }
            if isNew { sawNew = true } else { sawOld = true }
            // The store carries on: the same operation now succeeds (a rollback that already
            // happened has nothing left to roll back to).
            if !(isNew && operation == .rollback) { try operation.perform(store) }
            #expect(try store.verify().ok, "\(context): after retrying")
            try? FileManager.default.removeItem(atPath: dir)
        }
        #expect(sawOld && sawNew, "crashes early must leave the old state, crashes late the new one")
        // Among the crash points: after a temp write, after its fsync, after the rename, and
        // before the directory fsync.
        #expect(lastSteps.isSuperset(of: [.create, .write, .sync, .rename]), "\(lastSteps)")
        #expect(crashedSteps.contains(.syncDir), "\(crashedSteps)")
    }

    /// The write protocol itself, read off the trace: every file is fsynced before it is renamed
    /// into place, every rename and new directory is followed by an fsync of its directory before
    /// anything else is renamed, and a manifest is renamed only after its blobs' directories were
    /// synced. (A process crash cannot show a missing fsync; a power cut would.)
    @Test(arguments: Operation.allCases)
    func writesFollowTheDurableProtocol(operation: Operation) throws {
        let base = TemporaryDirectory("protocol")
        let files = FaultyFileLayer()
        let store = try ArtifactStore.open(at: base.path, files: files)
        try Fixtures.seed(store)
        let existing = Set(Fixtures.snapshot(base.path).filter { $0.value == "dir" }.keys.map { base.path + "/" + $0 })
        files.arm()
        try operation.perform(store)
        let trace = files.trace
        func parent(_ path: String) -> String { String(path[..<path.lastIndex(of: "/")!]) }

        var renames = 0
        for (i, call) in trace.enumerated() {
            switch call.op {
            case .rename:
                renames += 1
                let parts = call.path.components(separatedBy: " -> ")
                let (source, target) = (parts[0], parts[1])
                let lastWrite = trace[..<i].lastIndex { $0.op == .write && $0.path == source }
                let sync = trace[..<i].lastIndex { $0.op == .sync && $0.path == source }
                #expect(sync != nil && (lastWrite ?? -1) < sync!, "\(source) renamed without an fsync after its last write")
                let next = trace[(i + 1)...]
                let dirSync = next.firstIndex { $0.op == .syncDir && $0.path == parent(target) }
                let nextRename = next.firstIndex { $0.op == .rename }
                #expect(dirSync != nil && dirSync! < (nextRename ?? Int.max), "rename into \(parent(target)) not followed by its fsync")
            case .mkdir where !existing.contains(call.path):
                let next = trace[(i + 1)...]
                let dirSync = next.firstIndex { $0.op == .syncDir && $0.path == parent(call.path) }
                let nextRename = next.firstIndex { $0.op == .rename }
                #expect(dirSync != nil && dirSync! < (nextRename ?? Int.max), "new directory \(call.path) not made durable")
            default:
                break
            }
        }
        #expect(renames >= 1)
        // Manifests: every referenced blob's directory is synced (confirmed) before the manifest lands.
        let isManifest = { (call: FaultyFileLayer.Call) in
            call.op == .rename && (call.path.contains("/datasets/") || call.path.contains("/models/"))
        }
        if let manifestRename = trace.lastIndex(where: isManifest) {
            let manifestPath = trace[manifestRename].path.components(separatedBy: " -> ")[1]
            let data = try #require(FileManager.default.contents(atPath: manifestPath))
            let text = String(decoding: data, as: UTF8.self)
            let digests = text.components(separatedBy: "sha256:").dropFirst().map { String($0.prefix(64)) }
            #expect(!digests.isEmpty)
            for hex in digests {
                let fanout = base.path + "/blobs/sha256/" + hex.prefix(2)
                let synced = trace[..<manifestRename].contains { $0.op == .syncDir && $0.path == fanout }
                #expect(synced, "manifest written before blob \(hex)'s directory was synced")
            }
        }
    }
}
