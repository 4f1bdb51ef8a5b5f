import Foundation
import Synchronization

/// Guestbook rows that could not wait for the database: appended (one zstd frame per batch,
/// fsynced) to files under `<archive directory>/spill/`, replayed into the guestbook oldest file first
/// once it answers again, and deleted after. Replays are idempotent (rows carry unique ids),
/// so a crash between inserting and deleting only repeats work.
final class SpillJournal: Sendable {
    let directory: String
    private let level: Int32
    private let state: Mutex<State>

    private struct State {
        var writer: SegmentWriter?
        var next: Int
        /// Whether files may be waiting for replay (set by appends, cleared when listed).
        var dirty: Bool
    }

    init(directory: String, level: Int32) throws {
        self.directory = directory
        self.level = level
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RequestLogError(.io, "cannot create the spill directory \(directory)", cause: error)
        }
        let existing = Self.files(in: directory).compactMap { Int($0.prefix(while: \.isNumber)) }
        state = Mutex(State(writer: nil, next: (existing.max() ?? 0) + 1, dirty: !existing.isEmpty))
    }

    /// Appends rows durably (fsync) to the current spill file.
    func append(_ rows: [GuestbookRow]) throws {
        guard !rows.isEmpty else { return }
        let bytes = RecordCodec.encode(rows: rows)
        try state.withLock { s in
            if s.writer == nil {
                s.writer = try SegmentWriter(path: "\(directory)/\(String(format: "%08d", s.next)).spill", level: level)
                s.next += 1
            }
            try s.writer!.add(bytes)
            try s.writer!.flush(sync: true)
            s.dirty = true
        }
    }

    /// Closes the current file (the next append starts another) and lists every file, oldest first.
    /// Call `markDirty` when a replay of them fails, so they are tried again.
    func closedFiles() -> [String] {
        state.withLock { s in
            s.writer = nil
            s.dirty = false
            return Self.files(in: directory).map { "\(directory)/\($0)" }
        }
    }

    func markDirty() { state.withLock { $0.dirty = true } }

    /// Whether no spill file is left at all.
    var isEmpty: Bool { Self.files(in: directory).isEmpty }

    /// Whether spill files may be waiting for replay.
    var hasFiles: Bool { state.withLock { $0.dirty } }

    /// The rows of one spill file. A torn last batch (a crash in the middle of its append) is
    /// skipped: its rows were never counted as spilled, and their full records are in the payload archive.
    static func rows(of path: String) throws -> [GuestbookRow] {
        let (frames, _) = try SegmentReader.read(path: path)
        var rows: [GuestbookRow] = []
        for frame in frames { rows += try RecordCodec.decodeRows(frame) }
        return rows
    }

    private static func files(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".spill") }.sorted()
    }
}
