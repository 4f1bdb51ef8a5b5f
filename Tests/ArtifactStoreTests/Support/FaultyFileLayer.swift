import Foundation
import Synchronization
@testable import ArtifactStore

#if canImport(Glibc)
import Glibc
#endif

/// A ``FileLayer`` over the real filesystem that records every call and can fail one of them
/// (disk full, I/O error) or "crash": let `k` mutating steps through, then fail everything after
/// (except `close`, which the kernel does for a dead process, releasing its locks).
final class FaultyFileLayer: FileLayer {
    enum Op: String, Sendable, CaseIterable {
        case mkdir, create, openRead, openLock, write, read, sync, close, rename, syncDir, unlink, rmdir, list, stat, touch, lock

        /// Steps that change the disk: the places a crash can fall between.
        var isMutating: Bool {
            switch self {
            case .mkdir, .create, .write, .sync, .rename, .syncDir, .unlink, .rmdir, .touch: true
            default: false
            }
        }
    }

    struct Call: Sendable, CustomStringConvertible {
        var op: Op
        var path: String
        var description: String { "\(op) \(path)" }
    }

    private struct State {
        var trace: [Call] = []
        var recording = false
        var mutatingSteps = 0
        var crashAfter: Int?
        var crashed = false
        var failure: (op: Op, nth: Int, errno: Int32)?
        var seen: [String: Int] = [:]
    }

    private let real = PosixFileLayer()
    private let state = Mutex(State())

    /// Starts recording; with `crashAfter`, lets that many mutating steps through, then crashes.
    func arm(crashAfter: Int? = nil) {
        state.withLock {
            $0.trace = []
            $0.recording = true
            $0.mutatingSteps = 0
            $0.crashAfter = crashAfter
            $0.crashed = false
        }
    }

    /// Fails the `nth` (1-based) call of kind `op` from now on with `errno`, once.
    func fail(_ op: Op, nth: Int, errno: Int32) {
        state.withLock {
            $0.failure = (op, nth, errno)
            $0.seen = [:]
        }
    }

    /// Stops failing and crashing (the trace is kept).
    func disarm() {
        state.withLock {
            $0.recording = false
            $0.crashAfter = nil
            $0.crashed = false
            $0.failure = nil
        }
    }

    var trace: [Call] { state.withLock { $0.trace } }
    var mutatingSteps: Int { state.withLock { $0.mutatingSteps } }
    var crashed: Bool { state.withLock { $0.crashed } }
    /// True once the failure set by ``fail(_:nth:errno:)`` has been delivered.
    var failureFired: Bool { state.withLock { $0.failure == nil } }

    private func step(_ op: Op, _ path: String) throws {
        try state.withLock { s in
            if s.crashed && op != .close {
                throw SystemCallError(operation: "\(op) after simulated crash", path: path, errno: EIO)
            }
            if let failure = s.failure, failure.op == op {
                let n = s.seen[op.rawValue, default: 0] + 1
                s.seen[op.rawValue] = n
                if n == failure.nth {
                    s.failure = nil
                    throw SystemCallError(operation: op.rawValue, path: path, errno: failure.errno)
                }
            }
            if op.isMutating, let limit = s.crashAfter {
                if s.mutatingSteps >= limit {
                    s.crashed = true
                    throw SystemCallError(operation: "\(op) at simulated crash", path: path, errno: EIO)
                }
            }
            if op.isMutating { s.mutatingSteps += 1 }
            if s.recording { s.trace.append(Call(op: op, path: path)) }
        }
    }

    func makeDirectory(_ path: String) throws -> Bool { try step(.mkdir, path); return try real.makeDirectory(path) }
    func createFile(_ path: String) throws -> FileDescriptor { try step(.create, path); return try real.createFile(path) }
    func openForReading(_ path: String) throws -> FileDescriptor { try step(.openRead, path); return try real.openForReading(path) }
    func openForLocking(_ path: String) throws -> FileDescriptor { try step(.openLock, path); return try real.openForLocking(path) }
    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        try step(.write, path)
        try real.write(fd, bytes, path: path)
    }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
        try step(.read, path)
        return try real.read(fd, into: buffer, path: path)
    }
    func sync(_ fd: FileDescriptor, path: String) throws { try step(.sync, path); try real.sync(fd, path: path) }
    func close(_ fd: FileDescriptor) { try? step(.close, ""); real.close(fd) }
    func rename(_ from: String, _ to: String) throws { try step(.rename, from + " -> " + to); try real.rename(from, to) }
    func syncDirectory(_ path: String) throws { try step(.syncDir, path); try real.syncDirectory(path) }
    func removeFile(_ path: String) throws { try step(.unlink, path); try real.removeFile(path) }
    func removeDirectory(_ path: String) throws { try step(.rmdir, path); try real.removeDirectory(path) }
    func list(_ path: String) throws -> [String] { try step(.list, path); return try real.list(path) }
    func status(_ path: String) throws -> FileStatus? { try step(.stat, path); return try real.status(path) }
    func touch(_ path: String, time: Double?) throws { try step(.touch, path); try real.touch(path, time: time) }
    func lockExclusive(_ fd: FileDescriptor, wait: Bool, path: String) throws -> Bool {
        try step(.lock, path)
        return try real.lockExclusive(fd, wait: wait, path: path)
    }
}
