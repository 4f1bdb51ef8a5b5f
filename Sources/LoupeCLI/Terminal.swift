#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing to the terminal: results on stdout, progress and notes on stderr.
enum Terminal {
    static let stderrIsTTY = isatty(2) != 0

    /// A note on stderr (so stdout stays clean for data).
    static func note(_ text: String) {
        writeAll(2, Array((text + "\n").utf8))
    }

    /// Writes raw bytes to stdout (flushing Swift's `print` buffer first).
    static func out(_ bytes: [UInt8]) {
        fflush(nil)
        writeAll(1, bytes)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }

    /// A progress line that rewrites itself on a terminal and prints every `every`-th update otherwise.
    static func progress(_ text: String, final: Bool = false) {
        if stderrIsTTY {
            writeAll(2, Array(("\r\u{1B}[2K" + text + (final ? "\n" : "")).utf8))
        } else {
            writeAll(2, Array((text + "\n").utf8))
        }
    }

    /// Seconds as "1m 05s" or "4.2s".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds >= 60 {
            let s = Int(seconds.rounded())
            return "\(s / 60)m \(s % 60 < 10 ? "0" : "")\(s % 60)s"
        }
        return "\(Double(Int(seconds * 10)) / 10)s"
    }
}
