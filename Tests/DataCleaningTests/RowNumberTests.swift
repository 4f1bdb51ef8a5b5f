import Testing
@testable import DataCleaning

@Suite("Row numbers")
struct RowNumberTests {
    @Test func rowsCountDataRecordsNotLines() throws {
        let text = "\n" + canonicalHeader + "\r\n"                                // lines 1-2
            + "\n\n"                                                                // lines 3-4
            + "0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43\r\n"                    // row 1, line 5
            + "0.21,\"Premium\nor not\",E,SI1,59.8,61,326,3.89,3.84,2.31\n"         // row 2, lines 6-7
            + "   \n"                                                               // line 8
            + "0.23,Good,E,VS1,56.9,65,-1,4.05,4.07,2.31\n"                         // row 3, line 9
            + "0.29,\"Premium\",I,VS2,62.4,58,334,4.2,4.23,2.63\n"                  // row 4, line 10
            + "\n"                                                                  // line 11
            + "0.31,\"Good\",\"J\",SI2,63.3,\"5\n8\",335,4.34,4.35,2.75\n"          // row 5, lines 12-13
            + "0.24,Very Good,J,VVS2,62.8,57,336,3.94,3.96,2.48"                   // row 6, line 14
        let result = try Cleaner.clean(csv: bytes(text))
        #expect(result.clean.sourceRow == [1, 4, 6])
        #expect(result.quarantine.map(\.row) == [2, 3, 5])
        #expect(result.quarantine.map(\.line) == [6, 9, 12])
        #expect(result.report.emptyLinesSkipped == 5)
        #expect(result.quarantine[0].reasons == [
            "row 2, column \"cut\": \"Premium\\nor not\" is not a cut level (expected one of Fair, Good, Very Good, Premium, Ideal)",
        ])
        #expect(result.quarantine[2].reasons == ["row 5, column \"table\": \"5\\n8\" is not a number"])
    }

    @Test func aStrayQuoteLosesOnlyItsOwnLine() throws {
        let text = canonicalHeader + "\n"
            + "0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43\n"
            + "0.21,\"Premium,E,SI1,59.8,61,326,3.89,3.84,2.31\n"
            + "0.23,Good,E,VS1,56.9,65,327,4.05,4.07,2.31\n"
        let result = try Cleaner.clean(csv: bytes(text))
        #expect(result.clean.sourceRow == [1, 3])
        #expect(result.quarantine.map(\.row) == [2])
        #expect(result.quarantine[0].rules == [.parse])
    }
}
