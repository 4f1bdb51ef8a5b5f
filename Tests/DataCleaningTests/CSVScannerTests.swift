import Testing
@testable import DataCleaning

@Suite("CSV scanner")
struct CSVScannerTests {
    @Test func plainRecordsWithLFAndCRLFAndCR() {
        let (records, empty) = scanAll(bytes("a,b\r\nc,d\ne,f\rg,h"))
        #expect(records.map(\.fields) == [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]])
        #expect(records.map(\.line) == [1, 2, 3, 4])
        #expect(records.allSatisfy { $0.problem == nil })
        #expect(empty == 0)
    }

    @Test func quotedFieldsHoldCommasQuotesAndLineBreaks() {
        let (records, _) = scanAll(bytes("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"\"\r\nnext,\"x\"\"\"\n"))
        #expect(records.count == 2)
        #expect(records[0].fields == ["a,b", "say \"hi\"", "two\nlines", ""])
        #expect(records[1].fields == ["next", "x\""])
        #expect(records[1].line == 3)
    }

    @Test func quotedCRLFInsideAFieldCountsAsOneLine() {
        let (records, _) = scanAll(bytes("\"a\r\nb\r\nc\",1\r\nz,2\r\n"))
        #expect(records.map(\.fields) == [["a\r\nb\r\nc", "1"], ["z", "2"]])
        #expect(records.map(\.line) == [1, 4])
    }

    @Test func byteOrderMarkIsSkipped() {
        let input: [UInt8] = [0xEF, 0xBB, 0xBF] + bytes("carat,cut\n1,Good\n")
        let (records, _) = scanAll(input)
        #expect(records.map(\.fields) == [["carat", "cut"], ["1", "Good"]])
        // A BOM later in the file is data, not skipped.
        let (later, _) = scanAll(bytes("a\n") + [0xEF, 0xBB, 0xBF] + bytes("b\n"))
        #expect(later[1].fields == ["\u{FEFF}b"])
    }

    @Test func emptyAndBlankLinesAreSkippedAndCounted() {
        let (records, empty) = scanAll(bytes("\n\r\na,b\n\n  \t \r\nc,d\n\n"))
        #expect(records.map(\.fields) == [["a", "b"], ["c", "d"]])
        #expect(records.map(\.line) == [3, 6])
        #expect(empty == 5)
    }

    @Test func emptyFieldsAndTrailingSeparators() {
        let (records, _) = scanAll(bytes(",\na,,b,\nc,"))
        #expect(records.map(\.fields) == [["", ""], ["a", "", "b", ""], ["c", ""]])
    }

    @Test func quoteInsideUnquotedFieldIsLiteral() {
        let (records, _) = scanAll(bytes("ab\"c,d\n"))
        #expect(records[0].fields == ["ab\"c", "d"])
        #expect(records[0].problem == nil)
    }

    @Test func spacesAfterClosingQuoteAreIgnored() {
        let (records, _) = scanAll(bytes("\"a\"  ,\"b\"\t\n"))
        #expect(records[0].fields == ["a", "b"])
        #expect(records[0].problem == nil)
    }

    @Test func textAfterClosingQuoteFlagsTheRecordAndKeepsTheRawText() {
        let (records, _) = scanAll(bytes("1,\"700\"x,3\nok,1\n"))
        #expect(records.count == 2)
        #expect(records[0].problem == .textAfterClosingQuote(field: 1))
        #expect(records[0].fields == ["1", "\"700\"x", "3"])
        #expect(records[1].fields == ["ok", "1"])
        #expect(records[1].problem == nil)
    }

    @Test func unterminatedQuoteEndsAtItsLineAndScanningResumes() {
        let (records, _) = scanAll(bytes("a,b\n1,\"open,3\n4,5\n6,7"))
        #expect(records.count == 4)
        #expect(records[1].problem == .unterminatedQuote(field: 1))
        #expect(records[1].fields == ["1", "open,3"])
        #expect(records[2].fields == ["4", "5"])
        #expect(records[3].fields == ["6", "7"])
        #expect(records.map(\.line) == [1, 2, 3, 4])
    }

    @Test func unterminatedQuoteAtTheVeryEnd() {
        let (records, _) = scanAll(bytes("a\n\""))
        #expect(records.count == 2)
        #expect(records[1].problem == .unterminatedQuote(field: 0))
        #expect(records[1].fields == [""])
    }

    @Test func quoteThatClosesOnALaterLineSpansLines() {
        // RFC 4180: a quoted field may hold line breaks, so this is one record.
        let (records, _) = scanAll(bytes("1,\"x\n2,y\",3\n4,5\n"))
        #expect(records.map(\.fields) == [["1", "x\n2,y", "3"], ["4", "5"]])
        #expect(records.map(\.line) == [1, 3])
    }

    @Test func emptyInputHasNoRecords() {
        #expect(scanAll([]).records.isEmpty)
        #expect(scanAll([0xEF, 0xBB, 0xBF]).records.isEmpty)
        let blank = scanAll(bytes("\n\r\n  \n"))
        #expect(blank.records.isEmpty)
        #expect(blank.emptyLines == 3)
    }

    @Test func strayQuotesPairUpAcrossLinesAsRFC4180Says() {
        // Line 1's quote is closed by line 2's, so each pair of lines is one record whose
        // second field has text after its closing quote.
        let input = Array(repeating: bytes("1,\"2,3\n"), count: 2_000).flatMap { $0 }
        let (records, _) = scanAll(input)
        #expect(records.count == 1_000)
        #expect(records.allSatisfy { $0.problem == .textAfterClosingQuote(field: 1) })
        #expect(records[0].fields == ["1", "\"2,3\n1,\"2", "3"])
        #expect(records[999].line == 1_999)
    }
}
