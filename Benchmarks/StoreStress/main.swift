// loupe-store-stress: a child process for the artifact store's crash and concurrency tests.
//
//   loupe-store-stress chaos <store-dir> [seed]
//       Opens the store, prints "ready", then loops forever writing blobs, dataset and model
//       versions, alias moves, rollbacks and the occasional garbage collection. The crash test
//       kills it with SIGKILL at a random moment and checks the store.
//
//   loupe-store-stress contend <store-dir> <iterations> <tag>
//       Registers <iterations> model versions of "price" (trained on dataset "diamonds" version 1,
//       which must exist), promoting each to staging and then production with reason
//       "<tag>-<i>-staging" / "<tag>-<i>-production". Prints "done <tag>". Two of these run at once.
//
//   loupe-store-stress bench <store-dir> [megabytes]
//       Times put and read of a 3 MB model-like blob and of the bundled diamonds CSV; with
//       [megabytes], also streams a file that large in and out and reports peak memory.

import ArtifactStore
import BundledData
import Foundation
import LoupeUtilities

/// Bytes that look like a serialised tree ensemble: feature ids, thresholds, leaf values.
func modelLikeBytes(count: Int, rng: inout SplitMix64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= count {
            let r = rng.next()
            // One word in four is a small integer (child index / feature id), the rest floats
            // drawn from a limited set of thresholds, so the data compresses a little, like a model.
            let word: UInt64 = (r & 3 == 0) ? (r >> 56) : 0x3FF0_0000_0000_0000 | (r & 0x000F_FFFF_0000_0000)
            raw.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
            i += 8
        }
    }
    return bytes
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func chaos(_ store: ArtifactStore, seed: UInt64) throws -> Never {
    var rng = SplitMix64(state: seed)
    say("ready")
    var i = 0
    while true {
        // Tell the parent once the first write is done, so it can be sure kills land on a
        // store that is being written (a loaded machine may otherwise kill before any write).
        if i == 1 { say("wrote") }
        i += 1
        let datasetName = "data\(Int(rng.next() % 2))"
        let modelName = "model\(Int(rng.next() % 2))"
        switch rng.next() % 10 {
        case 0...3:
            let size = Int(rng.next() % 32_768) + 1
            let csv = modelLikeBytes(count: size, rng: &rng)
            let quarantine = rng.next() % 2 == 0 ? Array("row,reason\n\(i),bad\n".utf8) : nil
            let parent = try store.latestDataset(name: datasetName)?.version
            try store.putDataset(
                name: datasetName, cleanCSV: csv, quarantineCSV: quarantine,
                reportJSON: Array("{\"iteration\": \(i)}".utf8),
                counts: RowCounts(rowsIn: size, clean: size - 1, quarantined: 1), parent: parent, note: "chaos \(i)")
        case 4...6:
            guard let dataset = try store.latestDataset(name: datasetName) else { continue }
            let model = modelLikeBytes(count: Int(rng.next() % 65_536) + 8, rng: &rng)
            try store.putModel(
                name: modelName, modelBytes: model, dataset: dataset.reference,
                hyperparameters: ["rounds": .number(Double(i)), "objective": "l2"], metrics: ["rmse": Double(i)],
                reportJSON: Array("{\"trees\": \(i)}".utf8))
        case 7, 8:
            let versions = try store.modelVersions(name: modelName)
            guard let version = versions.randomElement(using: &rng) else { continue }
            try store.promote(name: modelName, version: version, to: rng.next() % 2 == 0 ? .production : .staging, reason: "chaos \(i)")
        default:
            if rng.next() % 4 == 0 {
                _ = try store.gc(gracePeriod: .zero, dryRun: false)
            } else {
                do {
                    try store.rollback(name: modelName, reason: "chaos \(i)")
                } catch let error as StoreError where error.code == .noRollbackTarget {
                    continue
                }
            }
        }
    }
}

func contend(_ store: ArtifactStore, iterations: Int, tag: String) throws {
    var rng = SplitMix64(state: tag.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) })
    let dataset = DatasetReference(name: "diamonds", version: 1)
    for i in 0..<iterations {
        let model = try store.putModel(
            name: "price", modelBytes: modelLikeBytes(count: 4096, rng: &rng), dataset: dataset,
            hyperparameters: ["tag": .string(tag), "i": .number(Double(i))], metrics: ["rmse": Double(i)])
        try store.promote(name: "price", version: model.version, to: .staging, reason: "\(tag)-\(i)-staging")
        try store.promote(name: "price", version: model.version, to: .production, reason: "\(tag)-\(i)-production")
    }
    say("done \(tag)")
}

/// Peak resident memory of this process so far, in MB.
func peakMemoryMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Streams a `megabytes` MB file in and out, to show memory stays flat whatever the size.
func benchLarge(_ store: ArtifactStore, megabytes: Int, scratch: String) throws {
    var rng = SplitMix64(state: 7)
    let source = scratch + "/large-in.bin"
    let target = scratch + "/large-out.bin"
    guard FileManager.default.createFile(atPath: source, contents: nil) else { fail("cannot create \(source)") }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
    for _ in 0..<megabytes { handle.write(Data(modelLikeBytes(count: 1 << 20, rng: &rng))) }
    try handle.close()
    let before = peakMemoryMB()
    let start = ContinuousClock.now
    let digest = try store.putBlob(contentsOfFile: source)
    let put = ContinuousClock.now - start
    let readStart = ContinuousClock.now
    try store.readBlob(digest, toFile: target)
    let read = ContinuousClock.now - readStart
    let stored = try store.backend.blobInfo(digest)?.storedSize ?? 0
    say("\(megabytes) MB streamed blob: put \(put), read+verify to file \(read), stored \(stored) bytes; peak RSS \(Int(before)) MB before, \(Int(peakMemoryMB())) MB after")
    try? FileManager.default.removeItem(atPath: source)
    try? FileManager.default.removeItem(atPath: target)
}

func bench(_ store: ArtifactStore) throws {
    func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = ContinuousClock.now
        let value = try body()
        let elapsed = ContinuousClock.now - start
        return (value, elapsed.seconds * 1e3)
    }
    var rng = SplitMix64(state: 42)
    let csv = BundledData.diamondsCSV()
    let cases: [(String, [UInt8], Int32)] = [
        ("3 MB model-like blob", modelLikeBytes(count: 3_000_000, rng: &rng), store.configuration.compressionLevel),
        ("bundled diamonds CSV", csv, store.configuration.datasetCompressionLevel),
    ]
    for (label, bytes, level) in cases {
        let (digest, put) = try time { try store.putBlob(bytes, compressionLevel: level) }
        let (back, read) = try time { try store.readBlob(digest) }
        guard back == bytes else { fail("\(label): read back different bytes") }
        let (_, dedup) = try time { try store.putBlob(bytes) }
        let stored = try store.backend.blobInfo(digest)?.storedSize ?? 0
        say(String(
            format: "%@ (zstd level %d): %d bytes -> %lld stored (%.2fx); put %.1f ms, read+verify %.1f ms, put again (dedup) %.1f ms",
            label, level, bytes.count, stored, Double(bytes.count) / Double(max(1, stored)), put, read, dedup))
    }
}

let args = CommandLine.arguments
guard args.count >= 3 else { fail("usage: loupe-store-stress chaos|contend|bench <store-dir> …") }
do {
    let store = try ArtifactStore.open(at: args[2])
    switch args[1] {
    case "chaos":
        try chaos(store, seed: args.count > 3 ? UInt64(args[3]) ?? 1 : 1)
    case "contend":
        guard args.count == 5, let n = Int(args[3]) else { fail("usage: loupe-store-stress contend <dir> <iterations> <tag>") }
        try contend(store, iterations: n, tag: args[4])
    case "bench":
        try bench(store)
        if args.count > 3, let megabytes = Int(args[3]) { try benchLarge(store, megabytes: megabytes, scratch: args[2]) }
    default:
        fail("unknown mode \(args[1])")
    }
} catch {
    fail("loupe-store-stress: \(error)")
}
