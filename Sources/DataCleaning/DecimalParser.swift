/// Parses decimal numbers from bytes without making a `String`.
///
/// Accepted syntax, after trimming spaces and tabs on both sides:
/// `[+-]? (digits [. digits?]? | . digits) ([eE] [+-]? digits)?`. Hexadecimal floats, `inf`,
/// `nan` and thousands separators are rejected, and so is a value that overflows to infinity.
///
/// The result equals Swift's `Double(String)` for every accepted text: the common case
/// (at most 19 significant digits and a decimal exponent within ±22 with a significand below
/// 2^53) is computed exactly with one correctly rounded multiplication or division (Clinger's
/// fast path); anything else goes through `Double(Substring)` itself.
enum DecimalParser {
    /// The finite number in `text`, or nil if it is not one.
    @inline(__always)
    static func parse(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        var start = 0
        var end = text.count
        while start < end, text[start] == Byte.space || text[start] == Byte.tab { start += 1 }
        while end > start, text[end - 1] == Byte.space || text[end - 1] == Byte.tab { end -= 1 }
        guard start < end else { return nil }

        var i = start
        var negative = false
        if text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
            negative = text[i] == UInt8(ascii: "-")
            i += 1
        }
        var significand: UInt64 = 0
        var significantDigits = 0   // digits counted from the first non-zero one
        var fractionDigits = 0      // digits after the point (all of them)
        var sawDigit = false
        while i < end, let d = digit(text[i]) {
            sawDigit = true
            if significantDigits > 0 || d != 0 { significantDigits += 1 }
            if significantDigits <= 19 { significand = significand &* 10 &+ d }
            i += 1
        }
        if i < end, text[i] == UInt8(ascii: ".") {
            i += 1
            while i < end, let d = digit(text[i]) {
                sawDigit = true
                if significantDigits > 0 || d != 0 { significantDigits += 1 }
                if significantDigits <= 19 { significand = significand &* 10 &+ d }
                fractionDigits += 1
                i += 1
            }
        }
        guard sawDigit else { return nil }
        var exponent = 0
        if i < end, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            i += 1
            var exponentNegative = false
            if i < end, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
                exponentNegative = text[i] == UInt8(ascii: "-")
                i += 1
            }
            var sawExponentDigit = false
            while i < end, let d = digit(text[i]) {
                sawExponentDigit = true
                if exponent < 100_000 { exponent = exponent * 10 + Int(d) }
                i += 1
            }
            guard sawExponentDigit else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        guard i == end else { return nil }

        if significand == 0 && significantDigits == 0 { return negative ? -0.0 : 0.0 }
        let scale = exponent - fractionDigits
        if significantDigits <= 19, significand <= 1 << 53, scale >= -22, scale <= 22 {
            let value = Double(significand)
            let result = scale >= 0 ? value * powersOfTen[scale] : value / powersOfTen[-scale]
            return negative ? -result : result
        }
        // Rare: long significands, large exponents. Let the standard library round it.
        let slice = UnsafeBufferPointer(rebasing: text[start..<end])
        guard let value = Double(Substring(decoding: slice, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    @inline(__always)
    private static func digit(_ byte: UInt8) -> UInt64? {
        let d = byte &- UInt8(ascii: "0")
        return d < 10 ? UInt64(d) : nil
    }

    /// 10^0 … 10^22: every one is exactly representable as a Double.
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]
}
