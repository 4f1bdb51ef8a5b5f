import ArtifactStore
import Foundation

/// The payload archive on disk: every call's full request and response, one record each, in
/// the open segment under `<directory>/open/`, rotated by size and age and then sealed into the
/// artifact store (a blob plus an index record of kind `recordKind`), from where
/// `PayloadArchiveReader` reads it back.
///
/// Not thread-safe: it is handed once to the log's appender, which alone uses it under its
/// lock (readers use the static functions); hence the unchecked `Sendable`.
final class PayloadArchive: @unchecked Sendable {
    /// A closed segment waiting to be sealed into the store.
    struct FinishedSegment: Sendable {
        var path: String
        var index: SegmentIndex
    }

    /// The store's record kind for sealed segments' indexes. Kept from when the archive was
    /// called the time capsule: existing stores hold records of this kind.
    static let recordKind = "request-capsule"

    let directory: String
    let store: ArtifactStore
    let maxBytes: Int
    let maxAge: Duration
    let level: Int32
    let runID: String
    private var segment: SegmentWriter?
    private var index = SegmentIndex(id: "")
    private var principals: Set<String> = []
    private var opened = ContinuousClock.now
    private var number = 0
    private let lock: Int32
    /// One record's encoding, reused with its capacity (a fresh 7.5 MB array per 100k-row call
    /// cost page faults); a call's record is built here, then framed into the segment's buffer.
    private var scratch: [UInt8] = []

    init(directory: String, store: ArtifactStore, maxBytes: Int, maxAge: Duration, level: Int32, runID: String) throws {
        self.directory = directory
        self.store = store
        self.maxBytes = maxBytes
        self.maxAge = maxAge
        self.level = level
        self.runID = runID
        do {
            try FileManager.default.createDirectory(atPath: directory + "/open", withIntermediateDirectories: true)
        } catch {
            throw RequestLogError(.io, "cannot create the payload archive directory \(directory)", cause: error)
        }
        // One writer per directory: recovery treats every open segment as abandoned.
        lock = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw RequestLogError(
                .unavailable,
                "the payload archive \(directory) is in use by another process (another loupe serve on this store?)")
        }
    }

    deinit { if lock >= 0 { close(lock) } }  // also releases the flock

    /// Adds calls (with their rows) to the open segment (opening one if needed) and writes them
    /// in one append (`sync()` makes them durable); `between` runs before each record (the
    /// appender gives way there).
    func append(_ calls: [CallRecord], rows: [GuestbookRow], between: () -> Void = {}) throws {
        precondition(calls.count == rows.count)
        guard !calls.isEmpty else { return }
        let writer = try openSegment()
        for (call, row) in zip(calls, rows) {
            between()
            scratch.removeAll(keepingCapacity: true)
            RecordCodec.encode(call, row: row, into: &scratch)
            try writer.add(scratch)
            index.add(row, principalSet: &principals)
        }
        try writer.flush(sync: false)
    }

    /// fsyncs what was appended to the open segment (nothing to do without one).
    func sync() throws {
        try segment?.flush(sync: true)
    }

    /// Closes the open segment when it is past its size or age and returns it for sealing
    /// (see `finishSegment`).
    func rotateIfDue() throws -> FinishedSegment? {
        guard let segment, segment.size >= maxBytes || ContinuousClock.now - opened >= maxAge else { return nil }
        return try finishSegment()
    }

    /// Closes the open segment, if any: fsynced, nothing more appended. It stays in `open/`
    /// until `SegmentSealer` has put it into the store (an empty one is removed), so a crash
    /// before that finds it for recovery and `loupe logs export` still reads it.
    func finishSegment() throws -> FinishedSegment? {
        guard let segment else { return nil }
        try segment.flush(sync: true)
        self.segment = nil
        var index = index
        index.bytes = segment.size
        guard index.count > 0 else {
            try? FileManager.default.removeItem(atPath: segment.path)
            return nil
        }
        return FinishedSegment(path: segment.path, index: index)
    }

    private func openSegment() throws -> SegmentWriter {
        if let segment { return segment }
        number += 1
        let stamp = Self.stamp(Date())
        let id = "seg-\(stamp)-\(runID)-\(String(format: "%06d", number))"
        let writer = try SegmentWriter(path: "\(directory)/open/\(id).seg", level: level)
        segment = writer
        index = SegmentIndex(id: id)
        principals = []
        opened = .now
        return writer
    }

    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd't'HHmmss"
        return formatter.string(from: date)
    }

    // MARK: Sealing and recovery

    /// Puts a finished segment file into the store (blob + index record).
    static func seal(path: String, index: SegmentIndex, store: ArtifactStore) throws {
        do {
            // The records are compressed already; the store's own pass is kept cheap.
            let digest = try store.putBlob(contentsOfFile: path, compressionLevel: 1)
            var index = index
            index.blobs = [digest.description]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try store.putRecord(kind: recordKind, id: index.id, json: Array(try encoder.encode(index)))
        } catch {
            throw RequestLogError(.io, "cannot seal the archive segment \(path) into the store", cause: error)
        }
    }

    /// Seals a finished segment into the store, then moves its local file to `sealed/` and
    /// returns that path: the caller deletes it once every row in it is in the guestbook or
    /// spilled (until then a crash recovers those rows from it).
    static func sealAndKeep(_ segment: FinishedSegment, directory: String, store: ArtifactStore) throws -> String {
        try seal(path: segment.path, index: segment.index, store: store)
        let kept = "\(directory)/sealed/\(segment.index.id).seg"
        try? FileManager.default.createDirectory(atPath: directory + "/sealed", withIntermediateDirectories: true)
        do {
            try FileManager.default.moveItem(atPath: segment.path, toPath: kept)
        } catch {
            throw RequestLogError(.io, "cannot move the sealed segment \(segment.path) aside", cause: error)
        }
        return kept
    }

    /// Segments left open by a process that did not shut down cleanly (kill -9, power loss):
    /// each is cut back to its last whole record, its rows returned (for replay into the
    /// guestbook), and sealed. Local copies of sealed segments whose rows were not all durable
    /// yet (`sealed/`) are read back the same way. The files are returned for the caller to
    /// delete once the rows are durable elsewhere (a crash before that only repeats this).
    static func recover(directory: String, store: ArtifactStore)
        throws -> (rows: [GuestbookRow], damage: [SegmentDamage], files: [String])
    {
        var rows: [GuestbookRow] = []
        var damage: [SegmentDamage] = []
        var done: [String] = []
        let sealed = directory + "/sealed"
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: sealed)) ?? []).filter({ $0.hasSuffix(".seg") }) {
            let path = "\(sealed)/\(file)"
            let (records, _) = try SegmentReader.read(path: path)
            let fileRows = records.compactMap { try? RecordCodec.decodeRecord($0).row }
            rows += fileRows
            if try store.record(kind: recordKind, id: String(file.dropLast(4))) == nil {
                var index = SegmentIndex(id: String(file.dropLast(4)))
                var principals: Set<String> = []
                for row in fileRows { index.add(row, principalSet: &principals) }
                try seal(path: path, index: index, store: store)
            }
            done.append(path)
        }
        let open = directory + "/open"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: open)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
        for file in files {
            let path = "\(open)/\(file)"
            if let cut = try SegmentReader.repair(path: path) { damage.append(cut) }
            let (records, _) = try SegmentReader.read(path: path)
            var index = SegmentIndex(id: String(file.dropLast(4)))
            var principals: Set<String> = []
            for bytes in records {
                guard let record = try? RecordCodec.decodeRecord(bytes) else { continue }
                rows.append(record.row)
                index.add(record.row, principalSet: &principals)
            }
            index.bytes = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
            if index.count > 0 { try seal(path: path, index: index, store: store) }
            done.append(path)
        }
        return (rows, damage, done)
    }

    // MARK: Reading back

    /// The sealed segments' indexes, oldest first.
    static func sealedSegments(store: ArtifactStore) throws -> [SegmentIndex] {
        try store.recordIDs(kind: recordKind).compactMap { id in
            guard let json = try store.record(kind: recordKind, id: id) else { return nil }
            return try? JSONDecoder().decode(SegmentIndex.self, from: Data(json))
        }.sorted { ($0.fromMilliseconds, $0.id) < ($1.fromMilliseconds, $1.id) }
    }
}
