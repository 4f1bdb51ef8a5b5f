import ArtifactStore
import Foundation

/// Reading the payload archive back: `loupe logs export`.
public enum PayloadArchiveReader {
    /// Calls `body` with every record whose time is in `[from, to)`, sealed segments first
    /// (oldest first), then the segments still open under `directory` (a running server's;
    /// a torn last record there is skipped and reported). Returns what could not be read.
    @discardableResult
    public static func export(
        store: ArtifactStore, directory: String?, from: Date?, to: Date?, _ body: (ArchivedCall) throws -> Void
    ) throws -> [SegmentDamage] {
        let lower = from.map(millis) ?? .min
        let upper = to.map(millis) ?? .max
        var damage: [SegmentDamage] = []
        func emit(_ records: [[UInt8]], name: String) throws {
            for (i, bytes) in records.enumerated() {
                let record: ArchivedCall
                do {
                    record = try RecordCodec.decodeRecord(bytes)
                } catch {
                    damage.append(SegmentDamage(path: name, offset: -1, recordsBefore: i, reason: "undecodable (\(error))"))
                    continue
                }
                if record.row.atMilliseconds >= lower && record.row.atMilliseconds < upper { try body(record) }
            }
        }
        for index in try PayloadArchive.sealedSegments(store: store)
        where index.toMilliseconds >= lower && index.fromMilliseconds < upper {
            guard let digest = index.blobs.first.flatMap(BlobDigest.init) else { continue }
            let bytes: [UInt8]
            do {
                bytes = try store.readBlob(digest)
            } catch {
                throw RequestLogError(.corrupt, "the archive segment \(index.id) cannot be read from the store", cause: error)
            }
            let (records, cut) = SegmentReader.read(bytes: bytes, name: index.id)
            if let cut { damage.append(cut) }
            try emit(records, name: index.id)
        }
        if let directory {
            let open = directory + "/open"
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: open)) ?? []).filter({ $0.hasSuffix(".seg") }).sorted() {
                let (records, cut) = try SegmentReader.read(path: "\(open)/\(file)")
                if let cut { damage.append(cut) }
                try emit(records, name: "\(open)/\(file)")
            }
        }
        return damage
    }

    /// The indexes of the sealed segments, oldest first.
    public static func segments(store: ArtifactStore) throws -> [SegmentIndex] {
        try PayloadArchive.sealedSegments(store: store)
    }

    /// Reads one segment file; throws a `.corrupt` error naming the first bad record when it is
    /// damaged (`records` before it are still given to `body`).
    public static func readSegment(path: String, _ body: (ArchivedCall) throws -> Void) throws {
        let (records, damage) = try SegmentReader.read(path: path)
        for bytes in records { try body(try RecordCodec.decodeRecord(bytes)) }
        if let damage { throw RequestLogError(.corrupt, damage.description) }
    }
}
