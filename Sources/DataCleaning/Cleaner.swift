/// Cleans diamonds CSV data: reads it, checks every record against the rules, and splits it
/// into a clean `DiamondTable` and a quarantine, with a report of what each rule found.
///
/// The input must start with a header line naming the required columns (the nine features
/// and `price`) in any order and any case; other columns are ignored and listed in the report.
/// Row-level problems never throw: the record goes to the quarantine with its reasons. Only
/// input that cannot be cleaned as a whole throws (`CleaningError`).
///
///     let result = try Cleaner.clean(csv: bytes)
///     print(result.report.table())
///     train(on: result.clean)
public enum Cleaner {
    /// Cleans CSV bytes.
    public static func clean(
        csv: [UInt8], configuration: CleaningConfiguration = .standard
    ) throws(CleaningError) -> CleaningResult {
        let result: Result<CleaningResult, CleaningError> = csv.withUnsafeBufferPointer { buffer in
            Result { () throws(CleaningError) in try clean(buffer, configuration: configuration) }
        }
        return try result.get()
    }

    /// Cleans CSV bytes in memory that the caller owns (e.g. a mapped file). The memory is
    /// bound to `UInt8` for the duration of the call.
    public static func clean(
        bytes: UnsafeRawBufferPointer, configuration: CleaningConfiguration = .standard
    ) throws(CleaningError) -> CleaningResult {
        try clean(bytes.bindMemory(to: UInt8.self), configuration: configuration)
    }

    static func clean(
        _ bytes: UnsafeBufferPointer<UInt8>, configuration: CleaningConfiguration
    ) throws(CleaningError) -> CleaningResult {
        var scanner = CSVScanner(bytes)
        guard scanner.next() else {
            throw CleaningError(
                code: .emptyInput,
                message: "the input is empty: expected a header line naming the columns "
                    + HeaderLayout.requiredNames.joined(separator: ", "))
        }
        if let problem = scanner.problem {
            let detail = switch problem {
            case .unterminatedQuote(let field): "the quote that opens column \(field + 1) is never closed"
            case .textAfterClosingQuote(let field): "text follows the closing quote of column \(field + 1)"
            }
            throw CleaningError(code: .malformedHeader, message: "the header line is not valid CSV: \(detail)")
        }
        let layout = try HeaderLayout(header: scanner.strings(), requirePrice: configuration.requirePrice)
        var pass = CleaningPass(configuration: configuration, layout: layout, expectedRows: bytes.count / 40 + 1)
        while scanner.next() {
            pass.process(scanner)
        }
        return pass.finish(emptyLinesSkipped: scanner.emptyLinesSkipped)
    }
}
