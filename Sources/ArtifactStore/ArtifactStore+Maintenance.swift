import Foundation
import LoupeUtilities
import Zstd

extension ArtifactStore {
    /// Re-hashes every blob and checks every manifest's and alias file's references.
    ///
    /// Runs without the lock, so writers carry on; a blob or manifest that appears meanwhile is
    /// either checked or not seen, never reported wrongly.
    public func verify() throws -> VerifyReport {
        var report = VerifyReport()
        let scan = try scanDocuments()
        report.documentsChecked = scan.documentsChecked
        report.brokenDocuments = scan.broken
        let stored = Set(try backend.listBlobs())
        for digest in stored.sorted() {
            do {
                _ = try streamBlob(digest, sizeHint: { _ in }, { _ in })
                report.blobsChecked += 1
            } catch let error as StoreError where error.code == .corruptBlob {
                report.blobsChecked += 1
                report.corruptBlobs.append(.init(digest: digest, location: backend.location(of: digest), message: error.message))
            } catch let error as StoreError where error.code == .notFound {
                continue  // collected since the listing
            }
        }
        for (digest, keys) in scan.references.sorted(by: { $0.key < $1.key }) where !stored.contains(digest) {
            if try backend.blobInfo(digest) == nil {
                report.missingBlobs.append(.init(digest: digest, referencedBy: keys.sorted()))
            }
        }
        report.orphanTempFiles = try backend.abandonedUploads().sorted()
        return report
    }

    /// Deletes blobs that no manifest references and that were last written or confirmed longer
    /// than `gracePeriod` ago. Runs under the lock, so no manifest is written meanwhile; the grace
    /// period protects blobs written just before the manifest that will reference them.
    ///
    /// Refuses to run (throws `corruptManifest`) if any manifest cannot be read, since it could
    /// not tell which blobs that manifest needs.
    ///
    /// - Parameter dryRun: report without deleting (the default).
    public func gc(gracePeriod: Duration = .seconds(24 * 3600), dryRun: Bool = true) throws -> GCReport {
        let grace = gracePeriod.seconds
        return try backend.withExclusiveLock {
            let scan = try scanDocuments()
            if let broken = scan.broken.first(where: { $0.message.hasPrefix(Self.unreadablePrefix) }) {
                throw StoreError(
                    .corruptManifest,
                    "refusing to collect garbage: \(broken.key) cannot be read, so the blobs it references are unknown (\(broken.message))")
            }
            let cutoff = Date().addingTimeInterval(-grace)
            var report = GCReport(dryRun: dryRun)
            for digest in try backend.listBlobs().sorted() {
                report.blobsExamined += 1
                if scan.references[digest] != nil {
                    report.referenced += 1
                    continue
                }
                guard let info = try backend.blobInfo(digest) else { continue }
                if info.lastTouched > cutoff {
                    report.tooYoung.append(digest)
                    continue
                }
                report.collected.append(.init(digest: digest, storedBytes: info.storedSize, lastTouched: info.lastTouched))
                if !dryRun { try backend.deleteBlob(digest) }
            }
            return report
        }
    }

    /// Space used, per kind of blob (raw and stored bytes, compression ratio) plus documents.
    public func du() throws -> UsageReport {
        let scan = try scanDocuments()
        var report = UsageReport()
        report.documentCount = scan.documentsChecked + 1
        report.documentBytes = scan.documentBytes + (try backend.documentSize(StoreMarker.key) ?? 0)
        for digest in try backend.listBlobs() {
            guard let info = try backend.blobInfo(digest) else { continue }
            let raw = try rawSize(of: digest)
            let usage = UsageReport.Blobs(count: 1, rawBytes: raw, storedBytes: info.storedSize)
            if scan.datasetBlobs.contains(digest) {
                report.datasets = report.datasets + usage
            } else if scan.modelBlobs.contains(digest) {
                report.models = report.models + usage
            } else {
                report.other = report.other + usage
            }
        }
        return report
    }

    /// A blob's content size: from its frame header, or by decompressing when the header
    /// does not say (streamed writes of unknown size).
    func rawSize(of digest: BlobDigest) throws -> Int64 {
        let source = try backend.openBlob(digest)
        var header = [UInt8](repeating: 0, count: 18)
        var filled = 0
        while filled < header.count {
            let n = try header.withUnsafeMutableBytes {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            if n == 0 { break }
            filled += n
        }
        let size = header.withUnsafeBytes {
            ZstdDecompressor.contentSize(ofFrameStartingWith: UnsafeRawBufferPointer(rebasing: $0[0..<filled]))
        }
        if let size { return Int64(size) }
        return try streamBlob(digest, sizeHint: { _ in }, { _ in })
    }

    static let unreadablePrefix = "unreadable: "

    /// Everything the manifests and alias files say, for verify, gc and du.
    struct DocumentScan {
        var references: [BlobDigest: [String]] = [:]
        var datasetBlobs: Set<BlobDigest> = []
        var modelBlobs: Set<BlobDigest> = []
        var broken: [VerifyReport.BrokenDocument] = []
        var documentsChecked = 0
        var documentBytes: Int64 = 0
    }

    func scanDocuments() throws -> DocumentScan {
        var scan = DocumentScan()
        func unreadable(_ key: String, _ error: any Error) {
            let message = (error as? StoreError)?.message ?? "\(error)"
            scan.broken.append(.init(key: key, message: Self.unreadablePrefix + message))
        }
        var datasetVersions: [String: Set<Int>] = [:]
        for name in try datasetNames() {
            for version in try versions(.dataset, name) {
                let key = Self.manifestKey(.dataset, name, version)
                scan.documentsChecked += 1
                scan.documentBytes += try backend.documentSize(key) ?? 0
                do {
                    guard let manifest = try readManifest(DatasetManifest.self, .dataset, name, version) else { continue }
                    datasetVersions[name, default: []].insert(version)
                    for blob in manifest.blobs {
                        scan.references[blob, default: []].append(key)
                        scan.datasetBlobs.insert(blob)
                    }
                    if let parent = manifest.parent, parent >= version {
                        scan.broken.append(.init(key: key, message: "parent version \(parent) is not older than \(version)"))
                    }
                } catch let error as StoreError where error.code == .corruptManifest {
                    unreadable(key, error)
                }
            }
        }
        for name in try modelNames() {
            var present: Set<Int> = []
            for version in try versions(.model, name) {
                let key = Self.manifestKey(.model, name, version)
                scan.documentsChecked += 1
                scan.documentBytes += try backend.documentSize(key) ?? 0
                do {
                    guard let manifest = try readManifest(ModelManifest.self, .model, name, version) else { continue }
                    present.insert(version)
                    for blob in manifest.blobs {
                        scan.references[blob, default: []].append(key)
                        scan.modelBlobs.insert(blob)
                    }
                    let dataset = manifest.dataset
                    if datasetVersions[dataset.name]?.contains(dataset.version) != true,
                        try backend.documentSize(Self.manifestKey(.dataset, dataset.name, dataset.version)) == nil
                    {
                        scan.broken.append(.init(key: key, message: "its dataset \(dataset) does not exist"))
                    }
                } catch let error as StoreError where error.code == .corruptManifest {
                    unreadable(key, error)
                }
            }
            let key = Self.aliasKey(name)
            guard let size = try backend.documentSize(key) else { continue }
            scan.documentsChecked += 1
            scan.documentBytes += size
            do {
                let record = try readAliases(name)
                for alias in ModelAlias.allCases {
                    if let version = record[alias], !present.contains(version),
                        try backend.documentSize(Self.manifestKey(.model, name, version)) == nil
                    {
                        scan.broken.append(.init(key: key, message: "\(alias) points to version \(version), which does not exist"))
                    }
                }
            } catch let error as StoreError where error.code == .corruptManifest {
                unreadable(key, error)
            }
        }
        // Alias files for names that have no model versions at all.
        let modelSet = Set(try modelNames())
        for file in try backend.listDocuments(prefix: "aliases/") where file.hasSuffix(".json") {
            let name = String(file.dropLast(5))
            if modelSet.contains(name) { continue }
            let key = "aliases/" + file
            scan.documentsChecked += 1
            scan.documentBytes += try backend.documentSize(key) ?? 0
            scan.broken.append(.init(key: key, message: "aliases for model \(name), which has no versions"))
        }
        // Records may hold blobs (attachments): a top-level "blobs" array of digests.
        for kind in try backend.listDocuments(prefix: "records/") {
            for file in try backend.listDocuments(prefix: "records/\(kind)/") where file.hasSuffix(".json") {
                let key = "records/\(kind)/\(file)"
                scan.documentsChecked += 1
                scan.documentBytes += try backend.documentSize(key) ?? 0
                guard let bytes = try backend.readDocument(key) else { continue }
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                    unreadable(key, StoreError(.corruptManifest, "\(key) is not a JSON object"))
                    continue
                }
                for text in object["blobs"] as? [String] ?? [] {
                    guard let digest = BlobDigest(text) else { continue }
                    scan.references[digest, default: []].append(key)
                    scan.modelBlobs.insert(digest)
                }
            }
        }
        return scan
    }
}
