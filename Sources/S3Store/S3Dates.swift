import Foundation

/// The two timestamp formats S3 uses, parsed without a formatter (fixed layouts, UTC).
enum S3Dates {
    /// `Mon, 07 Dec 2026 18:45:26 GMT` (HTTP `Date`, `Last-Modified`).
    static func parseHTTP(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, let day = Int(parts[1]), let year = Int(parts[3]),
            let month = months.firstIndex(of: String(parts[2])) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        return make(year, month + 1, day, clock[0], clock[1], Double(clock[2]))
    }

    /// `2026-12-07T18:45:05.000Z` (listings' `LastModified`, multipart `Initiated`).
    static func parseISO(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), var second = number(17..<19).map(Double.init)
        else { return nil }
        if bytes[19] == UInt8(ascii: "."), let end = bytes[20...].firstIndex(where: { !(48...57).contains($0) }),
            let fraction = Double("0." + String(decoding: bytes[20..<end], as: UTF8.self))
        {
            second += fraction
        }
        return make(year, month, day, hour, minute, second)
    }

    /// `2026-12-07T18:45:05Z`.
    static func formatISO(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func make(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Double) -> Date? {
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = 0
        let base = timegm(&parts)
        guard base != -1 else { return nil }
        return Date(timeIntervalSince1970: Double(base) + second)
    }
}
