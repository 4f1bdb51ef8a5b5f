import DiamondSchema
import Testing
@testable import DataCleaning

/// A deliberately dirty file: BOM, shuffled columns in mixed case, an extra column, CRLF and
/// LF, blank lines, quoted fields with commas, quotes and a line break, and every kind of bad
/// row the rules know.
let dirtyCSV: [UInt8] = [0xEF, 0xBB, 0xBF] + bytes(
    "Price,CUT, color ,clarity,depth,table,x,y,z,note,carat\r\n"                              // line 1
    + "326,Ideal,E,SI2,61.5,55,3.95,3.98,2.43,ok,0.23\r\n"                                     // row 1
    + "-5,Premium,E,SI1,59.8,61,3.89,3.84,2.31,negative price,0.21\n"                          // row 2
    + "0,Good,E,VS1,56.9,65,4.05,4.07,2.31,zero price,0.23\n"                                  // row 3
    + "334,Premium,I,VS2,62.4,58,0,4.23,2.63,zero x,0.29\n"                                    // row 4
    + "335,Superb,J,SI2,63.3,58,4.34,4.35,2.75,unknown cut,0.31\n"                             // row 5
    + "336,Very Good,Q,XX,62.8,57,3.94,3.96,2.48,unknown color and clarity,0.24\n"             // row 6
    + "n/a,Very Good,J,VVS2,62.8,57,3.94,3.96,2.48,text price,0.24\n"                          // row 7
    + "\"1,000\",Very Good,J,VVS2,62.8,57,3.94,3.96,2.48,thousands,0.24\n"                     // row 8
    + "\"\",Very Good,J,VVS2,62.8,57,3.94,3.96,2.48,empty price,0.24\n"                        // row 9
    + "337,Good,J,VS1,\n"                                                                      // row 10
    + "338,\"Very Good\",\"H\",\"SI1\",61.9,55,4.07,4.11,2.53,"                                 // row 11,
    + "\"has \"\"quotes\"\", a comma and a\nline break\",0.26\r\n"                             //   lines 12-13
    + "\r\n\n"                                                                                 // 2 blank lines
    + "  336 ,very good,  h ,vvs2,62.8,57,3.94,3.96,2.48,, 0.24\n"                             // row 12, line 16
    + "326.0,ideal,e,si2,61.50,55.0,3.95,3.98,2.43,row 1 spelled differently,0.230\n"          // row 13
    + "-5,Premium,E,SI1,59.8,61,3.89,3.84,2.31,negative price,0.21\n"                          // row 14
    + "500,Fair,G,I1,95,30,4,4,2.5,several,0\n"                                                // row 15
    + "5000,Premium,H,SI2,61.5,58,6.0,58.9,3.7,big y,1.0\n"                                    // row 16
    + "20000,Ideal,D,IF,61,57,7,7,4.27,heavy,12\n"                                             // row 17
    + "600,Ideal,D,IF,70,57,4,4,2.44,inconsistent,0.3\n"                                       // row 18
    + "338,Very Good,H,SI1,61.9,55,4.07,4.11,2.53,same as row 11,0.26\n"                       // row 19
    + "\"700\"x,Ideal,E,SI2,61.5,55,3.95,3.98,2.43,text after quote,0.23\n"                    // row 20
    + "326,Ideal,E,SI2,61.5,55,3.95,3.98,2.43,too,many,0.23\n"                                 // row 21
    + "800,\"Ideal,E,SI2,61.5,55,3.95,3.98,2.43,x,0.23"                                        // row 22, line 26
)

@Suite("Cleaning a dirty file")
struct DirtyDataTests {
    let result: CleaningResult

    init() throws {
        result = try Cleaner.clean(csv: dirtyCSV)
    }

    @Test func everyRowIsCleanOrQuarantinedExactlyOnce() {
        #expect(result.report.rowsIn == 22)
        #expect(result.report.cleanRows == 3)
        #expect(result.report.quarantinedRows == 19)
        #expect(result.report.rowsIn == result.clean.count + result.quarantine.count)
        let all = (result.clean.sourceRow + result.quarantine.map(\.row)).sorted()
        #expect(all == Array(1...22))
    }

    @Test func cleanRowsAndTheirValues() throws {
        let clean = result.clean
        #expect(clean.sourceRow == [1, 11, 12])
        #expect(clean.diamond(at: 0) == Diamond(
            carat: 0.23, cut: .ideal, color: .e, clarity: .si2, depth: 61.5, table: 55, x: 3.95, y: 3.98, z: 2.43))
        #expect(clean.price == [326, 338, 336])
        #expect(clean.diamond(at: 1).cut == .veryGood)
        #expect(clean.diamond(at: 1).clarity == .si1)
        // Spaces around values and lower-case grade labels are accepted.
        #expect(clean.diamond(at: 2) == Diamond(
            carat: 0.24, cut: .veryGood, color: .h, clarity: .vvs2, depth: 62.8, table: 57, x: 3.94, y: 3.96, z: 2.48))
    }

    @Test func quarantinedRowsFailExactlyTheExpectedRules() {
        let expected: [Int: [String]] = [
            2: ["price_positive"],
            3: ["price_positive"],
            4: ["dimensions_positive"],
            5: ["parse"], 6: ["parse"], 7: ["parse"], 8: ["parse"], 9: ["parse"], 10: ["parse"],
            13: ["duplicate"],
            14: ["price_positive"],
            15: ["carat_positive", "depth_range", "table_range", "depth_consistent"],
            16: ["dimension_range", "depth_consistent"],
            17: ["carat_range"],
            18: ["depth_consistent"],
            19: ["duplicate"],
            20: ["parse"], 21: ["parse"], 22: ["parse"],
        ]
        var actual: [Int: [String]] = [:]
        for row in result.quarantine { actual[row.row] = row.rules.map(\.id) }
        #expect(actual == expected)
    }

    @Test func messagesNameTheRowColumnValueAndExpectation() {
        func reasons(_ row: Int) -> [String] { result.quarantine.first { $0.row == row }?.reasons ?? [] }
        #expect(reasons(2) == ["row 2: price must be > 0, got -5"])
        #expect(reasons(3) == ["row 3: price must be > 0, got 0"])
        #expect(reasons(4) == ["row 4: x must be > 0, got 0"])
        #expect(reasons(5) == [
            "row 5, column \"cut\": \"Superb\" is not a cut level (expected one of Fair, Good, Very Good, Premium, Ideal)",
        ])
        #expect(reasons(6) == [
            "row 6, column \"color\": \"Q\" is not a color level (expected one of J, I, H, G, F, E, D)",
            "row 6, column \"clarity\": \"XX\" is not a clarity level (expected one of I1, SI2, SI1, VS2, VS1, VVS2, VVS1, IF)",
        ])
        #expect(reasons(7) == ["row 7, column \"price\": \"n/a\" is not a number"])
        #expect(reasons(8) == ["row 8, column \"price\": \"1,000\" is not a number"])
        #expect(reasons(9) == ["row 9, column \"price\": \"\" is not a number"])
        #expect(reasons(10) == ["row 10: 5 fields, expected 11 (truncated record?)"])
        #expect(reasons(13) == ["row 13: duplicate of row 1"])
        #expect(reasons(15) == [
            "row 15: carat must be > 0, got 0",
            "row 15: depth must be in 40...80, got 95",
            "row 15: table must be in 40...80, got 30",
            "row 15: depth 95 is 32.5 from 100*2z/(x+y) = 62.5 (tolerance 2)",
        ])
        #expect(reasons(16).first == "row 16: y must be in 0.1...20 mm, got 58.9")
        #expect(reasons(17) == ["row 17: carat must be in 0.01...10, got 12"])
        #expect(reasons(19) == ["row 19: duplicate of row 11"])
        #expect(reasons(20) == ["row 20, column \"Price\": text after the closing quote in \"\\\"700\\\"x\""])
        #expect(reasons(21) == ["row 21: 12 fields, expected 11"])
        #expect(reasons(22) == ["row 22, column \"CUT\": the opening quote is never closed"])
    }

    @Test func quarantineKeepsTheRawFieldsAndLines() throws {
        let byRow = Dictionary(uniqueKeysWithValues: result.quarantine.map { ($0.row, $0) })
        #expect(byRow[10]?.fields == ["337", "Good", "J", "VS1", ""])
        #expect(byRow[8]?.fields.first == "1,000")
        #expect(byRow[22]?.fields == ["800", "Ideal,E,SI2,61.5,55,3.95,3.98,2.43,x,0.23"])
        #expect(byRow[2]?.line == 3)
        #expect(byRow[13]?.line == 17)
        #expect(byRow[22]?.line == 26)
    }

    @Test func reportCountsPerRule() throws {
        let report = result.report
        func counts(_ rule: CleaningRule) -> [Int] {
            guard let outcome = report[rule] else { return [] }
            return [outcome.checked, outcome.failed]
        }
        #expect(counts(.parse) == [22, 9])
        #expect(counts(.pricePositive) == [13, 3])
        #expect(counts(.caratPositive) == [13, 1])
        #expect(counts(.dimensionsPositive) == [13, 1])
        #expect(counts(.caratRange) == [12, 1])
        #expect(counts(.depthRange) == [13, 1])
        #expect(counts(.tableRange) == [13, 1])
        #expect(counts(.dimensionRange) == [12, 1])
        #expect(counts(.depthConsistent) == [12, 3])
        #expect(counts(.duplicate) == [5, 2])
        #expect(report.emptyLinesSkipped == 2)
        #expect(report.extraColumns == ["note"])
        #expect(report.columns == ["Price", "CUT", " color ", "clarity", "depth", "table", "x", "y", "z", "note", "carat"])
        #expect(report[.parse]?.samples.map(\.row) == [5, 6, 7, 8, 9])
        #expect(report[.parse]?.samples[1].message
            == "row 6, column \"color\": \"Q\" is not a color level (expected one of J, I, H, G, F, E, D); "
            + "row 6, column \"clarity\": \"XX\" is not a clarity level (expected one of I1, SI2, SI1, VS2, VS1, VVS2, VVS1, IF)")
    }

    @Test func quarantineCSVHasRowRulesReasonsThenTheOriginalColumns() throws {
        let (records, _) = scanAll(result.quarantineCSV())
        let header = try #require(records.first?.fields)
        #expect(header == ["row", "rules", "reasons", "Price", "CUT", " color ", "clarity", "depth", "table",
                           "x", "y", "z", "note", "carat", "extra_1"])
        let rows = records.dropFirst()
        #expect(rows.count == 19)
        #expect(rows.allSatisfy { $0.fields.count == header.count && $0.problem == nil })
        let row15 = try #require(rows.first { $0.fields[0] == "15" })
        #expect(row15.fields[1] == "carat_positive;depth_range;table_range;depth_consistent")
        #expect(row15.fields[2].hasPrefix("row 15: carat must be > 0, got 0; row 15: depth must be in"))
        #expect(Array(row15.fields[3...]) == ["500", "Fair", "G", "I1", "95", "30", "4", "4", "2.5", "several", "0", ""])
        let row10 = try #require(rows.first { $0.fields[0] == "10" })
        #expect(Array(row10.fields[3...]) == ["337", "Good", "J", "VS1", "", "", "", "", "", "", "", ""])
        let row21 = try #require(rows.first { $0.fields[0] == "21" })
        #expect(row21.fields.last == "0.23")
        let row8 = try #require(rows.first { $0.fields[0] == "8" })
        #expect(row8.fields[3] == "1,000")
    }
}
