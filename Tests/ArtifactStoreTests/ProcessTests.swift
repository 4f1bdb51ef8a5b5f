import Foundation
import Synchronization
import Testing
@testable import ArtifactStore

#if canImport(Glibc)
import Glibc
#endif

/// Real processes: `loupe-store-stress` (Benchmarks/StoreStress), built next to the test bundle.
@Suite struct ProcessTests {
    /// The stress executable in the build products directory (where the test runner lives).
    static func stressExecutable() throws -> URL {
        let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        // On macOS the runner sits inside LoupePackageTests.xctest/Contents/MacOS.
        while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
        let candidate = directory.appendingPathComponent("loupe-store-stress")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw StoreError(.notFound, "loupe-store-stress not found at \(candidate.path); run `swift build --build-tests`")
        }
        return candidate
    }

    static func launch(_ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = try stressExecutable()
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        try process.run()
        return (process, out)
    }

    /// Reads one line from the child's stdout (blocking).
    static func readLine(_ pipe: Pipe) -> String {
        var line: [UInt8] = []
        while true {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            guard let b = byte.first, b != UInt8(ascii: "\n") else { break }
            line.append(b)
        }
        return String(decoding: line, as: UTF8.self)
    }

    @Test func killedWritersNeverCorruptTheStore() throws {
        let dir = TemporaryDirectory("sigkill")
        var rng = SystemRandomNumberGenerator()
        var writesSeen = 0
        for iteration in 0..<100 {
            // A fresh store every 25 kills keeps verify's re-hash of everything cheap.
            let path = dir.sub("store-\(iteration / 25)")
            let (child, out) = try Self.launch(["chaos", path, String(iteration)])
            let ready = Self.readLine(out)
            #expect(ready == "ready", "child said \(ready)")
            // Every fourth child is killed only after its first write, so writes always happen.
            if iteration % 4 == 0 { _ = Self.readLine(out) }
            usleep(UInt32.random(in: 5_000...50_000, using: &rng))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal, "iteration \(iteration): the child exited by itself")

            let store = try ArtifactStore.open(at: path)
            let problems = try Fixtures.problems(in: store)
            #expect(problems == [], "iteration \(iteration)")
            #expect(Fixtures.tempFiles(path).isEmpty, "iteration \(iteration): \(Fixtures.tempFiles(path))")
            if !problems.isEmpty { break }
            writesSeen = try store.datasetNames().reduce(0) { $0 + (try store.datasetVersions(name: $1).count) }
        }
        #expect(writesSeen > 0, "the children must get some writes done between kills")
    }

    @Test func twoProcessesPromotingAtOnceLoseNothing() throws {
        let dir = TemporaryDirectory("contend")
        let iterations = 15
        do {
            let store = try ArtifactStore.open(at: dir.path)
            try store.putDataset(name: "diamonds", cleanCSV: Fixtures.bytes(1000, seed: 1), counts: RowCounts(rowsIn: 1, clean: 1, quarantined: 0))
        }
        let children = try ["a", "b"].map { try Self.launch(["contend", dir.path, String(iterations), $0]) }
        for (child, out) in children {
            let line = Self.readLine(out)
            child.waitUntilExit()
            #expect(child.terminationStatus == 0)
            #expect(line.hasPrefix("done "))
        }
        let store = try ArtifactStore.open(at: dir.path)
        // Versions unique and dense: 1…2n, each manifest whole and written by exactly one child.
        let models = try store.models(name: "price")
        #expect(models.map(\.version) == Array(1...(2 * iterations)))
        let tags = models.compactMap { model -> String? in
            guard case .object(let h) = model.hyperparameters, case .string(let tag)? = h["tag"] else { return nil }
            return tag
        }
        #expect(tags.filter { $0 == "a" }.count == iterations && tags.filter { $0 == "b" }.count == iterations)
        // No lost alias move: every promotion of both children is in the history, once.
        let history = try store.aliases(name: "price").history
        #expect(history.count == 2 * 2 * iterations)
        #expect(Set(history.compactMap(\.reason)).count == history.count)
        // Each move's `from` is the previous move's `to` for that alias: no move was overwritten.
        for alias in ModelAlias.allCases {
            let moves = history.filter { $0.alias == alias }
            for (previous, move) in zip(moves, moves.dropFirst()) {
                #expect(move.from == previous.to)
            }
        }
        #expect(try Fixtures.problems(in: store) == [])
    }

    /// Within one process: several threads, each with its own store instance or sharing one.
    @Test func threadsWritingAtOnceGetDenseVersions() throws {
        let dir = TemporaryDirectory("threads")
        let shared = try ArtifactStore.open(at: dir.path)
        try shared.putDataset(name: "diamonds", cleanCSV: [1], counts: RowCounts(rowsIn: 1, clean: 1, quarantined: 0))
        let perThread = 12
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            do {
                // Threads 0 and 1 share an instance; 2 and 3 open their own.
                let store = t < 2 ? shared : try ArtifactStore.open(at: dir.path)
                for i in 0..<perThread {
                    let model = try store.putModel(
                        name: "price", modelBytes: Fixtures.bytes(2000, seed: UInt64(t * 100 + i)),
                        dataset: DatasetReference(name: "diamonds", version: 1), metrics: ["thread": Double(t)])
                    try store.promote(name: "price", version: model.version, reason: "t\(t)-\(i)")
                }
            } catch {
                failures.withLock { $0.append("thread \(t): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(try shared.modelVersions(name: "price") == Array(1...(4 * perThread)))
        #expect(try shared.aliases(name: "price").history.count == 4 * perThread)
        #expect(try Fixtures.problems(in: shared) == [])
    }
}
