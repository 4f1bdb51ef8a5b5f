import Testing
import DiamondSchema
@testable import DataCleaning

@Suite("Report")
struct ReportTests {
    @Test func jsonHasStableSortedKeysAndReadsBack() throws {
        let report = try Cleaner.clean(csv: dirtyCSV).report
        let json = report.json()
        let topKeys = ["\"clean_rows\"", "\"columns\"", "\"empty_lines_skipped\"", "\"extra_columns\"",
                       "\"quarantined_rows\"", "\"rows_in\"", "\"rules\"", "\"settings\""]
        var last = json.startIndex
        for key in topKeys {
            let range = try #require(json.range(of: "\n  " + key + " : "), "missing \(key)")
            #expect(range.lowerBound >= last, "\(key) out of order")
            last = range.lowerBound
        }
        for key in ["\"id\" : \"depth_consistent\"", "\"checked\" : 12", "\"failed\" : 3", "\"samples\" : [",
                    "\"summary\" : ", "\"enabled\" : true", "\"depth_tolerance\" : 2", "\"sample_limit\" : 5",
                    "\"drop_duplicates\" : true", "\"row\" : 15", "\"message\" : "] {
            #expect(json.contains(key), "\(key)")
        }
        #expect(try CleaningReport(json: json) == report)
    }

    @Test func jsonCopesWithOpenEndedRanges() throws {
        var ranges = ValidationRanges.standard
        ranges.carat = 0.01...Double.infinity
        let report = try Cleaner.clean(csv: dirtyCSV, configuration: CleaningConfiguration(ranges: ranges)).report
        let json = report.json()
        #expect(json.contains("\"carat_max\" : \"inf\""))
        #expect(try CleaningReport(json: json) == report)
        #expect(report[.caratRange]?.failed == 0)
    }

    @Test func tableIsAligned() throws {
        let table = try Cleaner.clean(csv: dirtyCSV).report.table()
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "rows in              22")
        #expect(lines[1] == "clean rows            3")
        #expect(lines[2] == "quarantined rows     19")
        #expect(lines[3] == "empty lines skipped   2")
        #expect(lines[4] == "extra columns        note")
        let header = try #require(lines.firstIndex { $0.hasPrefix("rule ") })
        let ruleLines = lines[(header + 1)...].prefix(CleaningRule.all.count)
        #expect(ruleLines.map { String($0.prefix { $0 != " " }) } == CleaningRule.all.map(\.id))
        // Right edges of the counts line up with the header's.
        let checkedEnd = try #require(lines[header].range(of: "checked")?.upperBound.utf16Offset(in: lines[header]))
        for line in ruleLines {
            let digitsEnd = line.utf16.count - line.drop { $0 != " " }.drop { $0 == " " }.drop { $0 != " " }.utf16.count
            #expect(digitsEnd == checkedEnd, "\(line)")
        }
        #expect(table.contains("\nduplicate                  5        2  not identical to an earlier clean row\n"))
        #expect(table.contains("depth_consistent     row 15: depth 95 is 32.5 from 100*2z/(x+y) = 62.5 (tolerance 2)"))
        #expect(table.contains("                     row 18: depth 70 is 9 from 100*2z/(x+y) = 61 (tolerance 2)"))
        #expect(table.contains("… and 4 more"))
    }

    @Test func sampleLimitCapsSamplesNotCounts() throws {
        let one = try Cleaner.clean(csv: dirtyCSV, configuration: CleaningConfiguration(sampleLimit: 1)).report
        #expect(one[.parse]?.samples.map(\.row) == [5])
        #expect(one[.parse]?.failed == 9)
        let none = try Cleaner.clean(csv: dirtyCSV, configuration: CleaningConfiguration(sampleLimit: -3)).report
        #expect(none.rules.allSatisfy { $0.samples.isEmpty })
        #expect(none.settings.sampleLimit == 0)
    }

    @Test func duplicatesCanBeKept() throws {
        let result = try Cleaner.clean(csv: dirtyCSV, configuration: CleaningConfiguration(dropDuplicates: false))
        #expect(result.clean.sourceRow == [1, 11, 12, 13, 19])
        #expect(result.report[.duplicate] == CleaningReport.RuleOutcome(
            rule: .duplicate, enabled: false, checked: 0, failed: 0, samples: []))
        #expect(result.report.table().contains("\nduplicate                off        0  "))
    }

    @Test func rulesHaveStableIdsInOrder() {
        #expect(CleaningRule.all.map(\.id) == [
            "parse", "price_positive", "carat_positive", "dimensions_positive", "carat_range",
            "depth_range", "table_range", "dimension_range", "depth_consistent", "duplicate",
        ])
        // The pass's counter indices follow the same order.
        #expect(CleaningRule.all[CleaningPass.parse] == .parse)
        #expect(CleaningRule.all[CleaningPass.pricePositive] == .pricePositive)
        #expect(CleaningRule.all[CleaningPass.caratPositive] == .caratPositive)
        #expect(CleaningRule.all[CleaningPass.dimensionsPositive] == .dimensionsPositive)
        #expect(CleaningRule.all[CleaningPass.caratRange] == .caratRange)
        #expect(CleaningRule.all[CleaningPass.depthRange] == .depthRange)
        #expect(CleaningRule.all[CleaningPass.tableRange] == .tableRange)
        #expect(CleaningRule.all[CleaningPass.dimensionRange] == .dimensionRange)
        #expect(CleaningRule.all[CleaningPass.depthConsistent] == .depthConsistent)
        #expect(CleaningRule.all[CleaningPass.duplicate] == .duplicate)
        #expect(CleaningRule(id: "depth_range") == .depthRange)
        #expect(CleaningRule(id: "nope") == nil)
    }
}
