@testable import DataCleaning
import LoupeUtilities

/// UTF-8 bytes of a test CSV.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Every record of `input` as (line, fields, problem), scanned by `CSVScanner`.
func scanAll(_ input: [UInt8]) -> (records: [(line: Int, fields: [String], problem: CSVScanner.Problem?)], emptyLines: Int) {
    input.withUnsafeBufferPointer { buffer in
        var scanner = CSVScanner(buffer)
        var records: [(line: Int, fields: [String], problem: CSVScanner.Problem?)] = []
        while scanner.next() {
            records.append((scanner.recordLine, scanner.strings(), scanner.problem))
        }
        return (records, scanner.emptyLinesSkipped)
    }
}


/// The canonical header of the diamonds data.
let canonicalHeader = "carat,cut,color,clarity,depth,table,price,x,y,z"
