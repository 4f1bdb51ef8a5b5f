import BundledData
import DiamondSchema
import Testing
@testable import DataCleaning

/// The bundled file cleaned once and shared by the tests below (it is the slow part).
let bundledCSV = BundledData.diamondsCSV()
let bundledResult: CleaningResult = {
    do {
        return try Cleaner.clean(csv: bundledCSV)
    } catch {
        fatalError("the bundled data must clean: \(error)")
    }
}()

@Suite("Bundled diamonds data")
struct BundledDataTests {
    @Test func countsAndInvariant() {
        let report = bundledResult.report
        #expect(report.rowsIn == BundledData.diamondsRowCount)
        #expect(report.rowsIn == 53_940)
        #expect(report.rowsIn == report.cleanRows + report.quarantinedRows)
        #expect(bundledResult.clean.count == report.cleanRows)
        #expect(bundledResult.quarantine.count == report.quarantinedRows)
        #expect(report.emptyLinesSkipped == 0)
        #expect(report.extraColumns.isEmpty)
        #expect(report[.parse]?.failed == 0)
        // Known dirt (cross-checked with an independent Python reading of the file).
        #expect(report[.dimensionsPositive]?.failed == 20)
        #expect(report[.dimensionRange]?.failed == 3)
        #expect(report[.tableRange]?.failed == 1)
        #expect(report[.depthConsistent]?.failed == 51)
        #expect(report[.duplicate]?.failed == 145)
        #expect(report.cleanRows == 53_723)
        let all = (bundledResult.clean.sourceRow + bundledResult.quarantine.map(\.row)).sorted()
        #expect(all == Array(1...53_940))
    }

    @Test func theTwentyZeroDimensionRowsAreQuarantined() throws {
        // Find the rows with a zero x, y or z straight from the raw text.
        let zeroRows: [Int] = bundledCSV.withUnsafeBufferPointer { buffer in
            var scanner = CSVScanner(buffer)
            _ = scanner.next()
            var rows: [Int] = []
            var row = 0
            while scanner.next() {
                row += 1
                if (7...9).contains(where: { Double(scanner.string($0)) == 0 }) { rows.append(row) }
            }
            return rows
        }
        #expect(zeroRows.count == 20)
        let quarantined = Dictionary(uniqueKeysWithValues: bundledResult.quarantine.map { ($0.row, $0) })
        for row in zeroRows {
            let entry = try #require(quarantined[row], "row \(row) should be quarantined")
            #expect(entry.rules == [.dimensionsPositive], "row \(row): \(entry.reasons)")
        }
        #expect(bundledResult.quarantine.filter { $0.rules.contains(.dimensionsPositive) }.map(\.row) == zeroRows)
    }

    @Test func impossibleDimensionsAndTableAreQuarantined() throws {
        let rows = bundledResult.quarantine
        #expect(rows.contains { $0.rules.contains(.dimensionRange) && $0.fields[8] == "58.9" })
        #expect(rows.contains { $0.rules.contains(.dimensionRange) && $0.fields[9] == "31.8" })
        #expect(rows.contains { $0.rules.contains(.tableRange) && $0.fields[5] == "95" })
    }

    @Test func everyNumberEqualsSwiftDoubleParsing() {
        let mismatches: Int = bundledCSV.withUnsafeBufferPointer { buffer in
            var scanner = CSVScanner(buffer)
            _ = scanner.next()
            var bad = 0
            while scanner.next() {
                for field in [0, 4, 5, 6, 7, 8, 9] {
                    let fast = scanner.withField(field) { DecimalParser.parse($0) }
                    let reference = Double(scanner.string(field))
                    if fast?.bitPattern != reference?.bitPattern || fast == nil { bad += 1 }
                }
            }
            return bad
        }
        #expect(mismatches == 0)
    }

    @Test func reportPrintsSmall() {
        let table = bundledResult.report.table()
        #expect(table.split(separator: "\n").count < 60)
        #expect(bundledResult.report.json().utf8.count < 20_000)
    }
}
