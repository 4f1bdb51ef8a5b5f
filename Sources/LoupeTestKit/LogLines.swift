import Foundation
import Logging
import Synchronization

/// What a component under test logged, for tests that check it: lines of
/// `<level> <label>: <message> <key=value …>`, kept in memory, or appended to a file when one
/// is given (the gateway tests grep every test's log file at the end).
public final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    private let file: Mutex<FileHandle?>
    private let url: URL?

    /// Lines kept in memory, or written to `file` (created empty) when given.
    public init(file url: URL? = nil) {
        self.url = url
        if let url { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        file = Mutex(url.flatMap { try? FileHandle(forWritingTo: $0) })
    }

    /// A logger (at debug level) whose every handler writes here.
    public func logger(label: String = "loupe.test") -> Logger {
        Logger(label: label) { label in Handler(sink: self, label: label) }
    }

    /// Every line so far.
    public var all: [String] {
        if let url { return ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        return lines.withLock { $0 }
    }

    /// Whether a line contains `text`.
    public func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    private func append(_ line: String) {
        let written = file.withLock { handle -> Bool in
            guard let handle else { return false }
            handle.write(Data((line + "\n").utf8))
            return true
        }
        if !written && url == nil { lines.withLock { $0.append(line) } }
    }

    private struct Handler: LogHandler {
        let sink: LogLines
        let label: String
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let meta = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.append("\(event.level) \(label): \(event.message) \(meta)")
        }
    }
}
