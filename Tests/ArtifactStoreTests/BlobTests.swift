import BundledData
import Crypto
import Foundation
import Testing
@testable import ArtifactStore

@Suite struct BlobTests {
    @Test(arguments: BackendKind.allCases) func smallBlobRoundTripAndLayout(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let bytes = Array("hello, diamonds".utf8)
        let digest = try store.putBlob(bytes)
        // Named by the SHA-256 of the raw bytes, fanned out by its first two hex digits.
        #expect(digest.hex == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
        #expect(store.backend.location(of: digest) == harness.location(of: digest))
        // Stored as a zstd frame (magic 28 B5 2F FD), not as the raw bytes.
        let stored = try #require(try harness.rawRead(Harness.blobKey(digest)))
        #expect(Array(stored.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
        #expect(try store.readBlob(digest) == bytes)
        #expect(try store.containsBlob(digest))
        #expect(digest.description == "sha256:" + digest.hex)
        #expect(BlobDigest(digest.description) == digest)
        #expect(BlobDigest("sha256:xyz") == nil)
    }

    @Test(arguments: BackendKind.allCases) func emptyBlobRoundTrips(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let digest = try store.putBlob([UInt8]())
        #expect(try store.readBlob(digest) == [])
    }

    @Test(arguments: BackendKind.allCases) func modelSizedBlobRoundTripsBitExact(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open(.init(compressionLevel: 3, chunkSize: 256 * 1024))
        // About what a 1000-tree ensemble serialises to.
        let bytes = Fixtures.bytes(3_000_000, seed: 1000)
        let digest = try store.putBlob(bytes)
        #expect(try store.readBlob(digest) == bytes)
        var streamed: [UInt8] = []
        var calls = 0
        let total = try store.readBlob(digest) { chunk in
            calls += 1
            streamed.append(contentsOf: chunk)
        }
        #expect(total == 3_000_000)
        #expect(streamed == bytes)
        #expect(calls > 1, "a 3 MB blob must come out in several chunks, not all at once")
    }

    @Test(arguments: BackendKind.allCases) func bundledCSVCompressesAtLeastFiveFold(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let csv = BundledData.diamondsCSV()
        let manifest = try store.putDataset(
            name: "diamonds", cleanCSV: csv, counts: RowCounts(rowsIn: 53_940, clean: 53_940, quarantined: 0))
        let digest = manifest.cleanBlob
        let stored = try #require(try store.backend.blobInfo(digest)).storedSize
        let ratio = Double(csv.count) / Double(stored)
        #expect(ratio >= 5, "compression ratio \(ratio)")
        #expect(try store.readBlob(digest) == csv)
        let usage = try store.du()
        #expect(usage.datasets.rawBytes == Int64(csv.count))
        #expect(usage.datasets.storedBytes == stored)
        #expect(usage.datasets.compressionRatio >= 5)
    }

    @Test func writingAnExistingBlobIsANoOp() throws {
        let dir = TemporaryDirectory()
        let files = FaultyFileLayer()
        let store = try ArtifactStore.open(at: dir.path, files: files)
        let bytes = Fixtures.bytes(100_000, seed: 9)
        let digest = try store.putBlob(bytes)
        let path = dir.path + "/blobs/sha256/" + digest.hex.prefix(2) + "/" + digest.hex
        // Age it, so that we can see the second put refresh its timestamp.
        try PosixFileLayer().touch(path, time: 1_000_000)
        let inode = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        files.arm()
        #expect(try store.putBlob(bytes) == digest)
        #expect(!files.trace.contains { $0.op == .create || $0.op == .rename }, "\(files.trace)")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int == inode)
        let info = try #require(try store.backend.blobInfo(digest))
        #expect(info.lastTouched.timeIntervalSinceNow > -60, "dedup must refresh the timestamp for gc")
        // The streaming path dedups too (after hashing): no second file, the temp file removed.
        let again = try store.putBlob { try $0.write(bytes) }
        #expect(again == digest)
        #expect(Fixtures.tempFiles(dir.path).isEmpty)
    }

    @Test(arguments: BackendKind.allCases) func streamsFilesInAndOut(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let dir = TemporaryDirectory("files")
        let store = try harness.open(.init(chunkSize: 64 * 1024))
        let bytes = Fixtures.bytes(1_000_003, seed: 5)
        let source = dir.sub("in.bin")
        #expect(FileManager.default.createFile(atPath: source, contents: Data(bytes)))
        let digest = try store.putBlob(contentsOfFile: source)
        #expect(digest == BlobDigest(of: bytes))
        let target = dir.sub("out.bin")
        try store.readBlob(digest, toFile: target)
        #expect(FileManager.default.contents(atPath: target) == Data(bytes))
        // The header records the size, so du need not decompress.
        #expect(try store.rawSize(of: digest) == 1_000_003)
    }

    @Test(arguments: BackendKind.allCases) func streamingWriterOfUnknownSize(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let parts = (0..<50).map { Fixtures.bytes(10_000 + $0, seed: UInt64($0)) }
        let digest = try store.putBlob { writer in
            for part in parts { try writer.write(part) }
            #expect(writer.bytesWritten == Int64(parts.reduce(0) { $0 + $1.count }))
        }
        let all = parts.flatMap { $0 }
        #expect(digest == BlobDigest(of: all))
        #expect(try store.readBlob(digest) == all)
        #expect(try store.rawSize(of: digest) == Int64(all.count))
    }

    @Test(arguments: BackendKind.allCases) func writerThatThrowsLeavesNothing(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.putBlob { writer in
                try writer.write(Fixtures.bytes(200_000, seed: 1))
                throw Boom()
            }
        }
        #expect(try store.backend.listBlobs().isEmpty)
        #expect(harness.kind == .s3 || Fixtures.tempFiles(harness.dir.path).isEmpty)
        #expect(try harness.rawObjects().keys.allSatisfy { !$0.hasPrefix("blobs/") && !$0.hasSuffix(".blob") })
        // A wrong expectedSize is an error, not a blob.
        #expect(throws: StoreError.self) { try store.putBlob(expectedSize: 10) { try $0.write([1, 2, 3]) } }
        #expect(try store.backend.listBlobs().isEmpty)
    }

    @Test(arguments: BackendKind.allCases) func readLimitIsEnforced(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let digest = try store.putBlob(Fixtures.bytes(10_000, seed: 3))
        #expect(throws: StoreError.self) { _ = try store.readBlob(digest, maxSize: 9_999) }
        #expect(try store.readBlob(digest, maxSize: 10_000).count == 10_000)
    }

    @Test(arguments: BackendKind.allCases) func missingBlobIsNotFound(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let digest = BlobDigest(of: [1, 2, 3])
        let error = try #require(throws: StoreError.self) { _ = try store.readBlob(digest) }
        #expect(error.code == .notFound)
        #expect(error.message.contains(digest.hex))
    }
}

@Suite struct CorruptionTests {
    /// Stores a blob and returns the store, its digest and its key (location: harness.location).
    func stored(_ harness: Harness, _ bytes: [UInt8]) throws -> (ArtifactStore, BlobDigest, String) {
        let store = try harness.open()
        let digest = try store.putBlob(bytes)
        return (store, digest, Harness.blobKey(digest))
    }

    func expectCorrupt(_ store: ArtifactStore, _ digest: BlobDigest, _ harness: Harness) throws {
        let path = harness.location(of: digest)
        let error = try #require(throws: StoreError.self) { _ = try store.readBlob(digest) }
        #expect(error.code == .corruptBlob)
        #expect(error.message.contains(digest.description), "the message names the digest: \(error.message)")
        #expect(error.message.contains(path), "the message names the path: \(error.message)")
        let report = try store.verify()
        #expect(!report.ok)
        #expect(report.corruptBlobs.map(\.digest) == [digest])
    }

    @Test(arguments: BackendKind.allCases, [0.1, 0.5, 0.9, 1.0])
    func flippedByteIsDetected(_ kind: BackendKind, at fraction: Double) throws {
        guard let harness = try Harness.make(kind) else { return }
        let (store, digest, key) = try stored(harness, Fixtures.bytes(200_000, seed: 11))
        var data = try #require(try harness.rawRead(key))
        let index = min(data.count - 1, Int(Double(data.count) * fraction))
        data[index] ^= 0x40
        try harness.rawWrite(key, data)
        try expectCorrupt(store, digest, harness)
    }

    @Test(arguments: BackendKind.allCases) func truncatedBlobIsDetected(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let (store, digest, key) = try stored(harness, Fixtures.bytes(200_000, seed: 12))
        let data = try #require(try harness.rawRead(key))
        try harness.rawWrite(key, Array(data.prefix(data.count / 2)))
        try expectCorrupt(store, digest, harness)
        try harness.rawWrite(key, [])
        try expectCorrupt(store, digest, harness)
    }

    /// A perfectly valid zstd frame of other content: only re-hashing catches this.
    @Test(arguments: BackendKind.allCases) func substitutedContentIsDetectedByTheHash(_ kind: BackendKind) throws {
        guard let harness = try Harness.make(kind) else { return }
        let dir = TemporaryDirectory("files")
        let (store, digest, key) = try stored(harness, Fixtures.bytes(50_000, seed: 13))
        let other = try store.putBlob(Fixtures.bytes(50_000, seed: 14))
        try harness.rawWrite(key, try #require(try harness.rawRead(Harness.blobKey(other))))
        try expectCorrupt(store, digest, harness)
        // The streaming read also refuses, and the file read leaves no file behind.
        #expect(throws: StoreError.self) { try store.readBlob(digest) { _ in } }
        #expect(throws: StoreError.self) { try store.readBlob(digest, toFile: dir.sub("out.bin")) }
        #expect(!FileManager.default.fileExists(atPath: dir.sub("out.bin")))
    }
}

extension BlobTests {
    /// 128 KiB multiples end exactly on zstd's output buffer (a bug once read them as truncated).
    @Test(arguments: BackendKind.allCases, [131_072, 4 * 131_072])
    func blobThatFillsTheDecompressionBufferExactly(_ kind: BackendKind, size: Int) throws {
        guard let harness = try Harness.make(kind) else { return }
        let store = try harness.open()
        let bytes = Fixtures.bytes(size, seed: UInt64(size))
        let digest = try store.putBlob(bytes)
        #expect(try store.readBlob(digest) == bytes)
        #expect(try store.verify().ok)
    }
}
