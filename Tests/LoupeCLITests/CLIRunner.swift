import Foundation

/// Runs the built `loupe` binary (it sits next to the test bundle in the build products).
struct CLIRunner {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let binary: URL = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("loupe")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "")
        return exe.deletingLastPathComponent().appendingPathComponent("loupe")
    }()

    /// A fresh temporary directory for one test.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `loupe` on a thread of its own and waits without holding one of the test process's
    /// cooperative threads (two on a 2-core machine): suites that run beside it keep theirs.
    static func run(
        _ arguments: [String], in directory: URL? = nil, timeout: TimeInterval? = nil, environment: [String: String] = [:]
    ) async throws -> Output {
        try await offPool { try runBlocking(arguments, in: directory, timeout: timeout, environment: environment) }
    }

    /// Runs blocking work (waiting on a child process, reading its pipe) on a thread of its own.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// With `timeout`, a command still running after that many seconds is terminated (a server
    /// that should have refused to start).
    /// `environment` adds to (or overrides) this process's environment.
    static func runBlocking(_ arguments: [String], in directory: URL? = nil, timeout: TimeInterval? = nil,
                            executable: URL = binary, environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { if process.isRunning { process.terminate() } }
        }
        // Read both pipes before waiting, so a large output cannot block the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A small labelled CSV: the first `rows` rows of a synthetic but realistic set.
func sampleCSV(rows: Int, seed: UInt64 = 1) -> String {
    var state = seed
    func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
    let cuts = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
    let colors = ["J", "I", "H", "G", "F", "E", "D"]
    let clarities = ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]
    var lines = ["carat,cut,color,clarity,depth,table,price,x,y,z"]
    for _ in 0..<rows {
        let carat = ((0.2 + 2 * next()) * 100).rounded() / 100
        let x = (6.4 * carat.squareRoot() * 100).rounded() / 100
        let y = ((x + 0.03) * 100).rounded() / 100
        let z = ((0.618 * (x + y) / 2) * 100).rounded() / 100
        let depth = ((100 * 2 * z / (x + y)) * 10).rounded() / 10
        let clarity = Int(next() * 8)
        let price = (exp(7.8 + 1.7 * log(carat) + 0.08 * Double(clarity) + 0.1 * (next() - 0.5))).rounded()
        lines.append("\(carat),\(cuts[Int(next() * 5)]),\(colors[Int(next() * 7)]),\(clarities[clarity]),"
            + "\(depth),\(Int(54 + next() * 6)),\(Int(price)),\(x),\(y),\(z)")
    }
    return lines.joined(separator: "\n") + "\n"
}
