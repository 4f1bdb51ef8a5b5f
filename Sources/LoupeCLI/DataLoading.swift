import BundledData
import DataCleaning
import Foundation

/// Where training or evaluation data comes from: a CSV file, or the data bundled in the binary.
enum DataSource {
    case bundled
    case file(String)

    init(path: String?) {
        self = path.map { .file($0) } ?? .bundled
    }

    var name: String {
        switch self {
        case .bundled: "the bundled diamonds data"
        case .file(let path): path
        }
    }

    /// Reads and cleans the data; the report says what was quarantined.
    func clean(_ configuration: CleaningConfiguration = .standard) throws -> CleaningResult {
        try oneLine(name) {
            switch self {
            case .bundled: try Cleaner.clean(csv: BundledData.diamondsCSV(), configuration: configuration)
            case .file(let path): try Cleaner.clean(fileAt: path, configuration: configuration)
            }
        }
    }
}

/// Reads a whole file, with a one-line error naming it.
func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("\(path): cannot read the file (missing or not readable)")
    }
    return [UInt8](data)
}

/// Writes a file atomically (a temporary file renamed into place), with a one-line error.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CLIError("\(path): cannot write the file (\(error.localizedDescription))")
    }
}

/// One line summarising a cleaning pass.
func cleaningSummary(_ report: CleaningReport, source: String) -> String {
    "\(source): \(report.rowsIn) rows in, \(report.cleanRows) clean, \(report.quarantinedRows) quarantined"
}
