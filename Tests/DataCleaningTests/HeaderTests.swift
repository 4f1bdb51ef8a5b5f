import Testing
@testable import DataCleaning

@Suite("Header and whole-input errors")
struct HeaderTests {
    private func cleaningError(_ text: String) -> CleaningError? {
        do {
            _ = try Cleaner.clean(csv: bytes(text))
            return nil
        } catch {
            return error
        }
    }

    @Test func missingColumnsAreAllNamed() throws {
        let error = try #require(cleaningError("carat,cut,colour,clarity,depth,x,y,z\n0.3,Good,E,SI1,61,4,4,2.4\n"))
        #expect(error.code == .missingColumns)
        for name in ["color", "table", "price"] {
            #expect(error.message.contains("\"\(name)\""), "\(error.message)")
        }
        #expect(error.message.hasPrefix("missing required columns \"color\", \"table\", \"price\";"))
    }

    @Test func aDataLineInsteadOfAHeaderSaysSo() throws {
        let error = try #require(cleaningError("0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43\n"))
        #expect(error.code == .missingColumns)
        #expect(error.message.contains("the first line must be a header"))
    }

    @Test func aRequiredColumnTwiceIsAnError() throws {
        let error = try #require(cleaningError(canonicalHeader + ",Price\n"))
        #expect(error.code == .duplicateColumns)
        #expect(error.message.contains("\"price\" (columns 7, 11)"))
    }

    @Test(arguments: ["", "\u{FEFF}", "\n\n", " \r\n\t\r\n"])
    func emptyInputIsAnError(_ text: String) throws {
        let error = try #require(cleaningError(text))
        #expect(error.code == .emptyInput)
        #expect(error.message.contains("expected a header line"))
    }

    @Test func malformedHeaderIsAnError() throws {
        let error = try #require(cleaningError("carat,\"cut,color\n"))
        #expect(error.code == .malformedHeader)
    }

    @Test(arguments: [canonicalHeader, canonicalHeader + "\n", canonicalHeader + "\r\n\r\n"])
    func headerOnlyIsAnEmptyResult(_ text: String) throws {
        let result = try Cleaner.clean(csv: bytes(text))
        #expect(result.clean.count == 0)
        #expect(result.quarantine.isEmpty)
        #expect(result.report.rowsIn == 0)
        #expect(result.report.rules.allSatisfy { $0.checked == 0 && $0.failed == 0 })
    }

    @Test func namesMatchIgnoringCaseAndSpacesInAnyOrder() throws {
        let text = " Z ,Y,X,PRICE,Table,Depth,Clarity,Color,Cut,Carat,extra one,Extra Two\n"
            + "2.43,3.98,3.95,326,55,61.5,SI2,E,Ideal,0.23,a,b\n"
        let result = try Cleaner.clean(csv: bytes(text))
        #expect(result.clean.count == 1)
        #expect(result.clean.diamond(at: 0).z == 2.43)
        #expect(result.clean.price == [326])
        #expect(result.report.extraColumns == ["extra one", "Extra Two"])
    }

    @Test func errorDescriptionHasCodeAndMessage() {
        let error = CleaningError(code: .missingColumns, message: "missing \"x\"")
        #expect(error.description == "missingColumns: missing \"x\"")
    }
}
