import LoupeUtilities
import Testing
@testable import DataCleaning

@Suite("Decimal parser")
struct DecimalParserTests {
    private func parse(_ text: String) -> Double? {
        Array(text.utf8).withUnsafeBufferPointer { DecimalParser.parse($0) }
    }

    @Test(arguments: [
        "0", "-0", "+0", "0.0", "1", "-1", "326", "0.23", "61.5", "3.95", "18823", "5.01",
        ".5", "5.", "-.5", "1e5", "1E5", "1e+05", "1e-05", "2.5e-3", "0.000123", "00012.50",
        "123456789012345678", "1234567890123456789", "12345678901234567890123",
        "0.1234567890123456789012", "9007199254740993", "9007199254740992",
        "1e22", "1e23", "1e-22", "1e-23", "4.9e-324", "2.2250738585072014e-308",
        "1.7976931348623157e308", "179769313486231570000000000000000000000", "0e999",
        "123.456e-2", "3.14159265358979323846264338327950288",
    ])
    func matchesSwiftDouble(_ text: String) throws {
        let expected = try #require(Double(text))
        let parsed = try #require(parse(text))
        #expect(parsed.bitPattern == expected.bitPattern, "\(text): \(parsed) vs \(expected)")
    }

    @Test(arguments: [
        "", " ", "n/a", "NaN", "nan", "inf", "-inf", "infinity", "0x1p3", "1,000", "1_000",
        "1e", "1e+", "e5", ".", "-", "+", "--1", "1.2.3", "1 2", "12a", "1e400", "-1e400", "\"1\"",
    ])
    func rejects(_ text: String) {
        #expect(parse(text) == nil, "\(text)")
    }

    @Test func trimsSpacesAndTabs() {
        #expect(parse(" 1.5\t") == 1.5)
        #expect(parse("\t-2 ") == -2)
    }

    @Test func randomDecimalsMatchSwiftDouble() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<20_000 {
            var text = Bool.random(using: &rng) ? "-" : ""
            let intDigits = Int.random(in: 0...22, using: &rng)
            for _ in 0..<intDigits { text.append(Character(String(Int.random(in: 0...9, using: &rng)))) }
            let fracDigits = Int.random(in: intDigits == 0 ? 1...22 : 0...22, using: &rng)
            if fracDigits > 0 || Bool.random(using: &rng) { text += "." }
            for _ in 0..<fracDigits { text.append(Character(String(Int.random(in: 0...9, using: &rng)))) }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                text += "e" + String(Int.random(in: -330...310, using: &rng))
            }
            let expected = Double(text)
            let parsed = parse(text)
            if let expected, expected.isFinite {
                #expect(parsed?.bitPattern == expected.bitPattern, "\(text)")
            } else {
                #expect(parsed == nil, "\(text)")
            }
        }
    }
}
