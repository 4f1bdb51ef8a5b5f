import Crypto
import Foundation
@testable import ArtifactStore
import LoupeUtilities

/// A fresh directory under the system temp directory, removed when dropped.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = "store") {
        path = NSTemporaryDirectory() + "loupe-\(label)-" + UUID().uuidString.prefix(8).lowercased()
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside this directory.
    func sub(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

enum Fixtures {
    /// Deterministic bytes: SplitMix64 words, `compressible` of every 4 words repeated.
    static func bytes(_ count: Int, seed: UInt64, compressible: Bool = true) -> [UInt8] {
        var random = SplitMix64(state: seed)
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            var previous: UInt64 = 0
            while i < count {
                let z = random.next()
                let word = compressible && z & 3 != 0 ? previous : z
                previous = word
                withUnsafeBytes(of: word) { w in
                    for j in 0..<min(8, count - i) { raw[i + j] = w[j] }
                }
                i += 8
            }
        }
        return out
    }

    static let report = Array("{\"rows\": 3, \"rules\": {\"carat > 0\": {\"passed\": 2, \"failed\": 1}}}".utf8)

    /// A store with dataset `diamonds` v1, model `price` v1 and v2, production → 1 → 2.
    @discardableResult
    static func seed(_ store: ArtifactStore) throws -> (DatasetManifest, [ModelManifest]) {
        let dataset = try store.putDataset(
            name: "diamonds", cleanCSV: bytes(5000, seed: 1), quarantineCSV: Array("row,reason\n3,carat <= 0\n".utf8),
            reportJSON: report, counts: RowCounts(rowsIn: 3, clean: 2, quarantined: 1), note: "seed", source: "bundled")
        let m1 = try store.putModel(
            name: "price", modelBytes: bytes(20_000, seed: 2), dataset: dataset.reference,
            hyperparameters: ["rounds": 100, "learning_rate": 0.1], metrics: ["rmse": 512.5])
        let m2 = try store.putModel(
            name: "price", modelBytes: bytes(20_000, seed: 3), dataset: dataset.reference,
            hyperparameters: ["rounds": 200], metrics: ["rmse": 498.0], parent: 1)
        try store.promote(name: "price", version: 1, to: .production, reason: "first")
        try store.promote(name: "price", version: 2, to: .production, reason: "better")
        return (dataset, [m1, m2])
    }

    /// Every file under `root` (relative path → SHA-256 of its content), directories as "dir".
    static func snapshot(_ root: String, excludingBlobs: Bool = false) -> [String: String] {
        var result: [String: String] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root) else { return result }
        while let relative = walker.nextObject() as? String {
            if excludingBlobs && relative.hasPrefix("blobs") { continue }
            let full = root + "/" + relative
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: full, isDirectory: &isDir)
            if isDir.boolValue {
                result[relative] = "dir"
            } else {
                let data = fm.contents(atPath: full) ?? Data()
                result[relative] = SHA256.hash(data: data).description
            }
        }
        return result
    }

    /// The files in `tmp/` other than those of live sessions' lock files and (empty) directories.
    static func tempFiles(_ root: String) -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        for entry in (try? fm.contentsOfDirectory(atPath: root + "/tmp")) ?? [] {
            let path = root + "/tmp/" + entry
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: path, isDirectory: &isDir)
            if isDir.boolValue {
                found += ((try? fm.contentsOfDirectory(atPath: path)) ?? []).map { entry + "/" + $0 }
            }
        }
        return found
    }

    /// Copies a store directory (no writer may be running).
    static func copy(_ from: String, to: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// Checks the invariants every test cares about after a crash or failure, returning problems.
    static func problems(in store: ArtifactStore) throws -> [String] {
        var problems: [String] = []
        let report = try store.verify()
        if !report.ok { problems.append("verify: \(report)") }
        if !report.orphanTempFiles.isEmpty { problems.append("orphan temp files: \(report.orphanTempFiles)") }
        for name in try store.datasetNames() {
            let versions = try store.datasetVersions(name: name)
            if versions != Array(1...max(1, versions.count)) { problems.append("dataset \(name) versions \(versions)") }
            for manifest in try store.datasets(name: name) {
                for blob in manifest.blobs { _ = try store.readBlob(blob) }
            }
        }
        for name in try store.modelNames() {
            let versions = try store.modelVersions(name: name)
            if versions != Array(1...max(1, versions.count)) { problems.append("model \(name) versions \(versions)") }
            for manifest in try store.models(name: name) {
                for blob in manifest.blobs { _ = try store.readBlob(blob) }
            }
        }
        return problems
    }
}

extension StoreError {
    /// True when this is a `code` error.
    func `is`(_ code: Code) -> Bool { self.code == code }
}
