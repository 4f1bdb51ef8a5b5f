import Testing
@testable import DataCleaning

@Suite("Round trips")
struct RoundTripTests {
    private func expectSameValues(_ a: DiamondTable, _ b: DiamondTable) {
        #expect(a.count == b.count)
        for (x, y) in zip(a.columns + [a.price], b.columns + [b.price]) {
            #expect(x.map(\.bitPattern) == y.map(\.bitPattern))
        }
    }

    @Test func cleanCSVOfTheDirtyFileReadsBackIdentically() throws {
        let first = try Cleaner.clean(csv: dirtyCSV)
        let output = first.cleanCSV()
        #expect(String(decoding: output, as: UTF8.self) == """
            carat,cut,color,clarity,depth,table,price,x,y,z
            0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43
            0.26,Very Good,H,SI1,61.9,55,338,4.07,4.11,2.53
            0.24,Very Good,H,VVS2,62.8,57,336,3.94,3.96,2.48

            """)
        let second = try Cleaner.clean(csv: output)
        #expect(second.quarantine.isEmpty)
        expectSameValues(first.clean, second.clean)
        #expect(second.clean.sourceRow == [1, 2, 3])
    }

    @Test func cleanCSVOfTheBundledDataReadsBackIdentically() throws {
        let second = try Cleaner.clean(csv: bundledResult.cleanCSV())
        #expect(second.quarantine.isEmpty)
        expectSameValues(bundledResult.clean, second.clean)
    }

    @Test func awkwardNumbersSurviveTheRoundTrip() throws {
        let values = [1e-7, 0.1 + 0.2, 1.0 / 3.0, 123456789.123456789, 5e20, Double.leastNonzeroMagnitude * 1e300, 2.5]
        var text = canonicalHeader + "\n"
        for (i, v) in values.enumerated() {
            // Vary only price so no rule trips; every value must come back bit for bit.
            text += "0.3,Good,E,SI1,62.5,57,\(v),4.3,4.3,\(2.6875 + Double(i) * 1e-9)\n"
        }
        let first = try Cleaner.clean(csv: Array(text.utf8))
        #expect(first.quarantine.isEmpty, "\(first.quarantine.map(\.reasons))")
        #expect(first.clean.price.map(\.bitPattern) == values.map(\.bitPattern))
        let second = try Cleaner.clean(csv: first.cleanCSV())
        expectSameValues(first.clean, second.clean)
    }

    @Test func quarantineCSVRecordsParseBackToTheRawFields() throws {
        let result = try Cleaner.clean(csv: dirtyCSV)
        let (records, _) = scanAll(result.quarantineCSV())
        let width = records[0].fields.count
        for (entry, record) in zip(result.quarantine, records.dropFirst()) {
            #expect(record.fields[0] == String(entry.row))
            #expect(Array(record.fields[3..<(3 + entry.fields.count)]) == entry.fields)
            #expect(record.fields.count == width)
        }
    }
}
