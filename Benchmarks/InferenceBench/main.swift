// loupe-bench-inference: scoring throughput of CompiledEnsemble on one model, per kernel path,
// batch size and thread count, plus single-row latency; prints one JSON object.
// bench/inference.py drives it and puts the anchors (LightGBM, lleaves) beside it.
//
//   loupe-bench-inference (--model FILE | --train-rounds N [--num-leaves L] [--max-depth D] [--save FILE])
//       [--rows FILE] [--batches 1,64,1000,100000,1000000] [--threads 2] [--paths scalar,avx2,avx512]
//       [--layouts bitvector,walk] [--seconds 1] [--top-levels 6] [--tree-block-bytes 262144] [--no-check]
//
// --rows: little-endian float64, row-major, 9 features per row (the diamond feature order); the
// rows are tiled to each batch size. Without it, the bundled data's clean rows are used.
// --export DIR: writes the bundled data's clean rows (features.f64, log_price.f64) for the anchors.
// --batches '' with --export and --train-rounds only trains, saves and exports.
// --import-lightgbm FILE / --import-xgboost FILE: score a model imported from that library.
// --scores-out FILE: the reference raw scores of the base rows (float64), for exactness checks.
// --explain-batches 1,64,1000: TreeSHAP rows/s too; --explain-out FILE writes the contributions
// of the first --explain-rows base rows (float64, rows × (features + 1), the base value last).
import BundledData
import DataCleaning
import Foundation
import LoupeUtilities
import ModelImport
import TreeExplain
import TreeInference
import TreeModel
import TreeTraining

struct Options {
    var model: String?
    var trainRounds = 0
    var numLeaves = 63
    var maxDepth = 0
    var save: String?
    var rows: String?
    var batches = [1, 64, 1000, 100_000, 1_000_000]
    var threads = 2
    var paths: [KernelPath] = KernelPath.available()
    var seconds = 1.0
    var topLevels = InferenceConfiguration().completeTopLevels
    var treeBlockBytes = InferenceConfiguration().treeBlockBytes
    var check = true
    var layouts: [TreeLayout?] = [nil]
    var export: String?
    var importLightGBM: String?
    var importXGBoost: String?
    var scoresOut: String?
    var explainBatches: [Int] = []
    var explainOut: String?
    var explainRows = 1000

    init(_ arguments: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--model": model = value()
            case "--train-rounds": trainRounds = Int(value()) ?? 0
            case "--num-leaves": numLeaves = Int(value()) ?? 63
            case "--max-depth": maxDepth = Int(value()) ?? 0
            case "--save": save = value()
            case "--rows": rows = value()
            case "--batches": batches = value().split(separator: ",").compactMap { Int($0) }
            case "--threads": threads = Int(value()) ?? 2
            case "--paths": paths = value().split(separator: ",").compactMap { KernelPath(rawValue: String($0)) }
            case "--seconds": seconds = Double(value()) ?? 1
            case "--top-levels": topLevels = Int(value()) ?? topLevels
            case "--tree-block-bytes": treeBlockBytes = Int(value()) ?? treeBlockBytes
            case "--no-check": check = false
            case "--export": export = value()
            case "--import-lightgbm": importLightGBM = value()
            case "--import-xgboost": importXGBoost = value()
            case "--scores-out": scoresOut = value()
            case "--explain-batches": explainBatches = value().split(separator: ",").compactMap { Int($0) }
            case "--explain-out": explainOut = value()
            case "--explain-rows": explainRows = Int(value()) ?? 1000
            case "--layouts": layouts = value().split(separator: ",").map { TreeLayout(rawValue: String($0)) }
            default: fail("unknown option \(arguments[i])")
            }
            i += 1
        }
        if model == nil && trainRounds == 0 && importLightGBM == nil && importXGBoost == nil {
            fail("give --model FILE, --import-lightgbm FILE, --import-xgboost FILE or --train-rounds N")
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("loupe-bench-inference: \(message)\n".utf8))
    exit(2)
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let clock = ContinuousClock()

// The model: a Loupe model file (trained by `loupe train`, or later imported from LightGBM), or
// one trained here on the bundled data.
let clean = try Cleaner.clean(csv: BundledData.diamondsCSV()).clean
let model: Ensemble
var importSeconds = 0.0
if let path = options.importLightGBM ?? options.importXGBoost {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    let start = clock.now
    let parsed = try options.importLightGBM != nil
        ? LightGBMImporter.ensemble(text: String(decoding: data, as: UTF8.self))
        : XGBoostImporter.ensemble(json: data)
    model = try DiamondFeatureMapping.conform(parsed)
    importSeconds = (clock.now - start).seconds
    log("imported \(path): \(model.trees.count) trees in \(importSeconds) s")
} else if let path = options.model {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    model = try Ensemble(serialized: [UInt8](data))
} else {
    log("training \(options.trainRounds) rounds, \(options.numLeaves) leaves, max depth \(options.maxDepth)")
    let configuration = TrainingConfiguration(
        rounds: options.trainRounds, numLeaves: options.numLeaves, maxDepth: options.maxDepth,
        earlyStoppingRounds: 0, threads: options.threads)
    model = try Trainer(configuration: configuration).train(clean).model
    if let save = options.save, !FileManager.default.createFile(atPath: save, contents: Data(model.serialized())) { fail("cannot write \(save)") }
}
let nf = model.featureCount

// The clean rows for the anchors: features (float64, row-major) and log price.
if let directory = options.export {
    var features: [Double] = []
    for r in 0..<clean.count { for f in 0..<nf { features.append(clean.columns[f][r]) } }
    let target = clean.price.map { Foundation.log($0) }
    for (name, values) in [("features.f64", features), ("log_price.f64", target)] {
        let data = values.withUnsafeBufferPointer { Data(buffer: $0) }
        if !FileManager.default.createFile(atPath: directory + "/" + name, contents: data) { fail("cannot write \(directory)/\(name)") }
    }
}

if options.batches.isEmpty { exit(0) }

// The rows, row-major.
var base: [Double]
if let path = options.rows {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    base = data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
} else {
    base = []
    base.reserveCapacity(clean.count * nf)
    for r in 0..<clean.count { for f in 0..<nf { base.append(clean.columns[f][r]) } }
}
let baseRows = base.count / nf
guard baseRows > 0 else { fail("no rows") }
let maxBatch = max(options.batches.max() ?? 1, options.explainBatches.max() ?? 1)
var tiled = [Double](repeating: 0, count: maxBatch * nf)
for r in 0..<maxBatch { for f in 0..<nf { tiled[r * nf + f] = base[(r % baseRows) * nf + f] } }
var output = [Double](repeating: 0, count: maxBatch)

// Exactness on the base rows, every path, before timing anything.
let checkedRows = options.check ? baseRows : 0
let reference = (0..<checkedRows).map { r in base.withUnsafeBufferPointer { model.rawScore(UnsafeBufferPointer(rebasing: $0[(r * nf)..<((r + 1) * nf)])) } }
var mismatches: [String: Int] = [:]
for path in options.paths {
    let compiled = try CompiledEnsemble(model, configuration: .init(path: path, threads: options.threads))
    var scores = [Double](repeating: 0, count: checkedRows)
    base.withUnsafeBufferPointer { rows in
        scores.withUnsafeMutableBufferPointer { compiled.rawScores(rowMajor: rows, rows: checkedRows, into: $0) }
    }
    mismatches[path.rawValue] = zip(scores, reference).filter { $0.0.bitPattern != $0.1.bitPattern }.count
}

let loadStart = clock.now
let compiledDefault = try CompiledEnsemble(model, configuration: .init(threads: options.threads))
let compileSeconds = (clock.now - loadStart).seconds

/// CPU time of the calling thread: unlike wall time, it does not count the time the OS gave
/// the core to another process (the machine is shared), so it judges a kernel on a busy machine.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Calls `body` until `options.seconds` have passed (at least 3 times); returns the best wall
/// seconds per call and the best calling-thread CPU seconds per call.
func measure(_ body: () -> Void) -> (wall: Double, cpu: Double) {
    body()  // warm up
    var best = Double.infinity
    var bestCPU = Double.infinity
    var total = 0.0
    var calls = 0
    while total < options.seconds || calls < 3 {
        let start = clock.now
        let cpuStart = threadCPUSeconds()
        body()
        let s = (clock.now - start).seconds
        bestCPU = min(bestCPU, threadCPUSeconds() - cpuStart)
        best = min(best, s)
        total += s
        calls += 1
    }
    return (best, bestCPU)
}

var results: [[String: Any]] = []
for path in options.paths {
  for layout in options.layouts {
    for threads in Set([1, options.threads]).sorted() {
        let compiled = try CompiledEnsemble(
            model,
            configuration: .init(
                path: path, layout: layout, threads: threads, completeTopLevels: options.topLevels,
                treeBlockBytes: options.treeBlockBytes))
        let layoutName = compiled.layout?.rawValue ?? "generic"
        for batch in options.batches {
            let (s, cpu) = tiled.withUnsafeBufferPointer { rows in
                output.withUnsafeMutableBufferPointer { out in
                    measure { compiled.rawScores(rowMajor: rows, rows: batch, into: out) }
                }
            }
            var result: [String: Any] = [
                "path": path.rawValue, "layout": layoutName, "threads": threads, "batch": batch, "seconds": s,
                "rows_per_second": Double(batch) / s,
            ]
            // One thread: also the rate on the thread's own CPU time (the kernel's speed on a busy machine).
            if threads == 1 { result["cpu_rows_per_second"] = Double(batch) / cpu }
            results.append(result)
            log("\(path) \(layoutName) threads \(threads) batch \(batch): \(Int(Double(batch) / s)) rows/s"
                + (threads == 1 ? " (\(Int(Double(batch) / cpu)) per CPU second)" : ""))
        }
        // Single-row latency through rawScore(_:) (one feature vector, no batch).
        let row = Array(base[0..<nf])
        var sink = 0.0
        let single = row.withUnsafeBufferPointer { features in
            measure { for _ in 0..<100 { sink += compiled.rawScore(features) } }.wall / 100
        }
        if sink.isNaN { log("") }
        results.append(["path": path.rawValue, "layout": layoutName, "threads": threads, "single_row_seconds": single])
        log("\(path) \(layoutName) threads \(threads) single row: \(Int(single * 1e9)) ns")
    }
  }
}

if let path = options.scoresOut {
    let scores = (0..<baseRows).map { r in base.withUnsafeBufferPointer { model.rawScore(UnsafeBufferPointer(rebasing: $0[(r * nf)..<((r + 1) * nf)])) } }
    if !FileManager.default.createFile(atPath: path, contents: scores.withUnsafeBufferPointer { Data(buffer: $0) }) { fail("cannot write \(path)") }
}

// TreeSHAP: table build time, rows/s per batch (all threads), and contributions for checking.
var explain: [String: Any] = [:]
if !options.explainBatches.isEmpty || options.explainOut != nil {
    let start = clock.now
    let explainer = try TreeExplainer(model)
    explain["build_seconds"] = (clock.now - start).seconds
    explain["table_bytes"] = explainer.tableBytes
    explain["reference_trees"] = explainer.referenceTreeCount
    log("TreeSHAP tables: \(explainer.tableBytes / 1_000_000) MB in \(explain["build_seconds"]!) s")
    if let path = options.explainOut {
        let n = min(options.explainRows, baseRows)
        var out: [Double] = []
        for r in 0..<n {
            out += explainer.contributions(Array(base[(r * nf)..<((r + 1) * nf)]))
            out.append(explainer.baseValue)
        }
        if !FileManager.default.createFile(atPath: path, contents: out.withUnsafeBufferPointer { Data(buffer: $0) }) { fail("cannot write \(path)") }
    }
    var rates: [String: Double] = [:]
    var cpuRates: [String: Double] = [:]
    for batch in options.explainBatches {
        let columns = (0..<nf).map { f in (0..<batch).map { tiled[$0 * nf + f] } }
        var sink = 0.0
        let (s, cpu) = measure { sink += explainer.contributions(columns: columns, threads: options.threads)[0] }
        if sink.isNaN { log("") }
        rates[String(batch)] = Double(batch) / s
        // One thread: also the rate on the thread's own CPU time (the kernel's speed on a busy machine).
        if options.threads == 1 { cpuRates[String(batch)] = Double(batch) / cpu }
        log("TreeSHAP batch \(batch): \(Int(Double(batch) / s)) rows/s"
            + (options.threads == 1 ? " (\(Int(Double(batch) / cpu)) per CPU second)" : ""))
    }
    explain["rows_per_second"] = rates
    if !cpuRates.isEmpty { explain["cpu_rows_per_second"] = cpuRates }
}

let depths = model.trees.map { tree -> Int in
    var level = [Int](repeating: 0, count: tree.internalCount), deepest = tree.internalCount > 0 ? 1 : 0
    for n in 0..<tree.internalCount { for c in [tree.leftChild[n], tree.rightChild[n]] where c >= 0 { level[Int(c)] = level[n] + 1; deepest = max(deepest, level[n] + 2) } }
    return deepest
}
// Tests a row actually takes per tree (its path length), averaged over up to 2,000 rows.
var pathTests = 0
let pathRows = min(baseRows, 2000)
for r in 0..<pathRows {
    for tree in model.trees where tree.internalCount > 0 {
        var node: Int32 = 0
        while node >= 0 {
            let n = Int(node)
            pathTests += 1
            node = tree.goesLeft(node: n, base[r * nf + Int(tree.splitFeature[n])]) ? tree.leftChild[n] : tree.rightChild[n]
        }
    }
}
let summary: [String: Any] = [
    "model": [
        "trees": model.trees.count, "leaves": model.trees.reduce(0) { $0 + $1.leafCount },
        "mean_depth": Double(depths.reduce(0, +)) / Double(max(depths.count, 1)), "max_depth": depths.max() ?? 0,
        "mean_path": Double(pathTests) / Double(max(pathRows * model.trees.count, 1)),
        "flat": compiledDefault.genericReason == nil, "compile_seconds": compileSeconds,
        "generic_reason": compiledDefault.genericReason ?? "", "import_seconds": importSeconds,
    ],
    "explain": explain,
    "best_path": KernelPath.best.rawValue,
    "available_paths": KernelPath.available().map(\.rawValue),
    "rows_checked": checkedRows, "mismatches": mismatches,
    "results": results,
]
let json = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
print(String(decoding: json, as: UTF8.self))
