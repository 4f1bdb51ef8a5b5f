import Foundation

extension CleaningReport {
    /// The report as pretty-printed JSON with sorted, stable snake_case keys.
    ///
    /// Keys: `rows_in`, `clean_rows`, `quarantined_rows`, `empty_lines_skipped`, `columns`,
    /// `extra_columns`, `settings` and `rules`, an array in rule order of
    /// `{id, summary, enabled, checked, failed, samples: [{row, message}]}`. A non-finite
    /// setting (e.g. an open-ended range) is written as the string `"inf"` / `"-inf"`.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            // Every field is a plain number, string, bool or array of them.
            preconditionFailure("a cleaning report always encodes: \(error)")
        }
    }

    /// Reads a report written by `json()`.
    public init(json: String) throws {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try decoder.decode(CleaningReport.self, from: Data(json.utf8))
    }
}
