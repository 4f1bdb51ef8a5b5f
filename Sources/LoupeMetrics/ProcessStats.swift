import Foundation

/// One reading of the process's figures from Linux's /proc (nil elsewhere, or if /proc is not
/// mounted): what `ProcessMetrics` exports.
struct ProcessStats {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var threads: Int
    /// Seconds since the Unix epoch.
    var startTime: Double
    var openFDs: Int
    var maxFDs: Int?

    static func current() -> ProcessStats? {
        #if os(Linux)
        // /proc/self/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses, so
        // the fields are counted after the last ')'. Field n (1-based, proc(5)) is at n - 3.
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let threads = field(20), let start = field(22),
            let vsize = field(23), let rss = field(24)
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = sysconf(Int32(_SC_PAGESIZE))
        let bootTime = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? 0
        let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        // "Max open files            20000                20000                files"
        let maxFDs = (try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("Max open files") }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first }
            .flatMap { Int($0) }
        return ProcessStats(
            cpuSeconds: (utime + stime) / ticks, residentBytes: Int(rss) * page, virtualBytes: Int(vsize),
            threads: Int(threads), startTime: bootTime + start / ticks, openFDs: openFDs, maxFDs: maxFDs)
        #else
        return nil
        #endif
    }
}
