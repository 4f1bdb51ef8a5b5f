import Foundation
import Testing
import TreeInference
import TreeModel

/// The kernel a machine can run is the kernel that runs: no silent fall back to scalar.
@Suite struct DispatchTests {
    /// CPU flags from /proc/cpuinfo (empty where there is none).
    static let cpuFlags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: ":").last!.split(separator: " ").map(String.init))
    }()

    @Test func availablePathsMatchTheCPUFlags() {
        let paths = CompiledEnsemble.availablePaths()
        #expect(paths.first == .scalar)
        if Self.cpuFlags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512vl", "avx512dq"]) {
            #expect(paths.contains(.avx512))
            #expect(KernelPath.best == .avx512)
        }
        if Self.cpuFlags.isSuperset(of: ["avx2", "bmi2"]) {
            #expect(paths.contains(.avx2))
        }
    }

    @Test func theDefaultPathIsTheBestOne() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 3, leaves: 2...5, seed: 1)
        #expect(try CompiledEnsemble(model).kernelPath == KernelPath.best)
    }

    @Test func eachForcedPathRunsItsOwnKernel() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 5, leaves: 2...9, seed: 2)
        let rows = [Double](repeating: 0.5, count: 9 * 40)
        var scores = [Double](repeating: 0, count: 40)
        for path in KernelPath.available() {
            let compiled = try CompiledEnsemble(model, configuration: .init(path: path, threads: 1))
            #expect(compiled.kernelPath == path)
            let before = path.callCount
            rows.withUnsafeBufferPointer { rows in
                scores.withUnsafeMutableBufferPointer { compiled.rawScores(rowMajor: rows, rows: 40, into: $0) }
            }
            // Other suites score in parallel, so the count may grow by more than one.
            #expect(path.callCount > before, "\(path) did not run its kernel")
        }
    }

    @Test func aPathTheCPULacksIsAnError() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 1, leaves: 2...2, seed: 3)
        for path in KernelPath.allCases where !KernelPath.available().contains(path) {
            #expect(throws: InferenceError.self) { try CompiledEnsemble(model, configuration: .init(path: path)) }
        }
    }
}
