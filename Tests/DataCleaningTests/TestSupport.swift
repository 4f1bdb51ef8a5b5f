@testable import DataCleaning

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

/// A small deterministic random generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The canonical header of the diamonds data.
let canonicalHeader = "carat,cut,color,clarity,depth,table,price,x,y,z"
