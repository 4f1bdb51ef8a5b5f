extension Cleaner {
    /// `csv` without the data records numbered in `rows` (1-based, as `DiamondTable.sourceRow`
    /// and the quarantine number them); the header and every other record are written back
    /// field for field, so cleaning the result judges them exactly as before. For setting aside
    /// rows that a later check (a retrain's label screen) rejected, before the rest is ingested.
    public static func csv(_ csv: [UInt8], without rows: Set<Int>) -> [UInt8] {
        csv.withUnsafeBufferPointer { bytes in
            var scanner = CSVScanner(bytes)
            var out = CSVWriter(reservingCapacity: bytes.count)
            guard scanner.next() else { return [] }
            out.append(record: scanner.strings())
            var row = 0
            while scanner.next() {
                row += 1
                if !rows.contains(row) { out.append(record: scanner.strings()) }
            }
            return out.bytes
        }
    }
}
