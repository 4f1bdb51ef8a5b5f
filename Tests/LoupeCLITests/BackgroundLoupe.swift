import Foundation
import Testing

/// A `loupe` process in the background (a server, a gateway) whose output goes to a log file in
/// the test's directory, with the port it printed.
final class BackgroundLoupe: @unchecked Sendable {
    let process = Process()
    let log: URL
    private(set) var port = 0

    /// Starts `loupe arguments…` and waits (up to 3 minutes: never a timing assertion) until its
    /// output matches `ready`, whose first capture is the port.
    init(
        _ arguments: [String], in dir: URL, log name: String, environment: [String: String] = [:],
        ready: Regex<(Substring, Substring)>
    ) async throws {
        process.executableURL = CLIRunner.binary
        process.arguments = arguments
        process.currentDirectoryURL = dir
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        log = dir.appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let logURL = log
        nonisolated(unsafe) let pattern = ready
        nonisolated(unsafe) let running = process
        let found: Int? = try await CLIRunner.offPool {
            let deadline = Date().addingTimeInterval(180)
            while Date() < deadline, running.isRunning {
                let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
                if let match = text.firstMatch(of: pattern), let port = Int(match.1) { return port }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return nil
        }
        guard let found else {
            // Not left running (holding its ports) for the rest of the suite.
            if process.isRunning { process.terminate(); process.waitUntilExit() }
            port = 0
            try #require(Bool(false), "loupe \(arguments.first ?? "") did not start: \(output)")
            return
        }
        port = found
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// Polls `condition` every 100 ms for up to a minute (a guard against hanging, not a timing
/// assertion); returns whether it came true.
func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
    for _ in 0..<600 {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return false
}
