import LoupeUtilities
import Testing
@testable import DataCleaning

@Suite("Garbage never crashes and never loses rows")
struct PropertyTests {
    /// A valid row, unique by its price.
    private func validRow(_ i: Int, _ rng: inout SplitMix64) -> String {
        let cuts = ["Fair", "Good", "Very Good", "Premium", "Ideal"], colors = ["D", "E", "F", "G", "H", "I", "J"]
        let clarities = ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]
        let x = Double(Int.random(in: 380...900, using: &rng)) / 100
        let z = (x * 0.615 * 100).rounded() / 100
        let depth = ((200 * z / (2 * x)) * 10).rounded() / 10
        let cut = cuts.randomElement(using: &rng)!
        return "0.\(Int.random(in: 20...99, using: &rng)),"
            + (cut.contains(" ") && Bool.random(using: &rng) ? "\"\(cut)\"" : cut) + ","
            + colors.randomElement(using: &rng)! + "," + clarities.randomElement(using: &rng)! + ","
            + "\(depth),\(Int.random(in: 50...65, using: &rng)),\(1000 + i),\(x),\(x),\(z)"
    }

    /// A line that is not a valid row and holds no quote or line break.
    private func garbageLine(_ rng: inout SplitMix64) -> String {
        let alphabet = Array("abcXYZ019.,-+ \t;:/eE%#")
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:
            return String((0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        case 1:
            let tokens = ["", "n/a", "-1", "0", "1e999", "Ideal", "Q", "VS1", "x", "1,5", "NaN", "inf"]
            return (0..<Int.random(in: 1...13, using: &rng)).map { _ in tokens.randomElement(using: &rng)! }
                .joined(separator: ",")
        case 2:
            let row = validRow(0, &rng).filter { $0 != "\"" }
            return String(row.prefix(Int.random(in: 1..<row.count, using: &rng)))
        default:
            var fields = validRow(0, &rng).filter { $0 != "\"" }.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            fields[Int.random(in: 0..<fields.count, using: &rng)] = ["n/a", "", "-", "Superb", "1..2"].randomElement(using: &rng)!
            return fields.joined(separator: ",")
        }
    }

    private func expectInvariants(_ result: CleaningResult, _ context: String) {
        let report = result.report
        #expect(report.rowsIn == report.cleanRows + report.quarantinedRows, "\(context)")
        #expect(result.clean.count == report.cleanRows && result.quarantine.count == report.quarantinedRows, "\(context)")
        let rows = (result.clean.sourceRow + result.quarantine.map(\.row)).sorted()
        #expect(rows == Array(0..<report.rowsIn).map { $0 + 1 }, "\(context)")
        #expect(result.quarantine.allSatisfy { !$0.failures.isEmpty }, "\(context)")
        #expect(report[.parse]?.checked == report.rowsIn, "\(context)")
        #expect(report.rules.allSatisfy { $0.failed <= $0.checked && $0.samples.count <= 5 }, "\(context)")
        let (records, _) = scanAll(result.quarantineCSV())
        #expect(records.count == result.quarantine.count + 1, "\(context)")
        #expect(records.allSatisfy { $0.problem == nil }, "\(context)")
    }

    @Test func garbageLinesAmongValidRows() throws {
        var rng = SplitMix64(seed: 7)
        for trial in 0..<150 {
            var lines = [canonicalHeader]
            var validRows: [Int] = []      // data row numbers of the valid rows
            var garbageRows: [Int] = []
            var row = 0
            for i in 0..<40 {
                let eol = Bool.random(using: &rng) ? "\r\n" : "\n"
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    let garbage = garbageLine(&rng)
                    lines.append(garbage + eol)
                    if !garbage.allSatisfy({ $0 == " " || $0 == "\t" }) {
                        row += 1
                        garbageRows.append(row)
                    }
                } else {
                    lines.append(validRow(i, &rng) + eol)
                    row += 1
                    validRows.append(row)
                }
            }
            let text = lines[0] + "\n" + lines.dropFirst().joined()
            let result = try Cleaner.clean(csv: bytes(text))
            expectInvariants(result, "trial \(trial)")
            #expect(result.report.rowsIn == row, "trial \(trial)")
            #expect(Set(validRows).isSubset(of: result.clean.sourceRow), "trial \(trial): \(result.quarantine.map(\.reasons))")
            #expect(Set(result.quarantine.map(\.row)).isSubset(of: garbageRows), "trial \(trial)")
        }
    }

    @Test func randomBytesKeepTheInvariant() throws {
        var rng = SplitMix64(seed: 99)
        let interesting: [UInt8] = Array("\",\r\n \t0123456789.-eE".utf8) + [0, 0xC3, 0xA9, 0xFF, 0xEF, 0xBB, 0xBF]
        for trial in 0..<300 {
            var input = bytes(canonicalHeader + (Bool.random(using: &rng) ? "\r\n" : "\n"))
            for i in 0..<Int.random(in: 0...12, using: &rng) {
                if Bool.random(using: &rng) {
                    input += bytes(validRow(i, &rng) + "\n")
                } else {
                    for _ in 0..<Int.random(in: 0...60, using: &rng) {
                        input.append(Bool.random(using: &rng)
                            ? interesting.randomElement(using: &rng)!
                            : UInt8.random(in: 0...255, using: &rng))
                    }
                }
            }
            let result = try Cleaner.clean(csv: input)
            expectInvariants(result, "trial \(trial)")
        }
    }

    @Test func everyPrefixOfTheDirtyFileCleansOrFailsCleanly() {
        for length in 0...dirtyCSV.count {
            do {
                let result = try Cleaner.clean(csv: Array(dirtyCSV.prefix(length)))
                expectInvariants(result, "prefix \(length)")
            } catch {
                // Only a prefix without a whole header may fail, and only as a whole-input error.
                #expect(error.code == .emptyInput || error.code == .missingColumns || error.code == .malformedHeader,
                        "prefix \(length): \(error)")
                #expect(length <= 60, "prefix \(length): \(error)")
            }
        }
    }
}
