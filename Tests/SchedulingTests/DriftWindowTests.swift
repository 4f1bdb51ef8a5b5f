import DiamondSchema
import Testing
@testable import Scheduling

/// The drift window keeps the last `capacity` finite rows of what was priced, as a ring.
@Suite struct DriftWindowTests {
    /// Rows `values` as feature columns: row r holds `values[r]` in every feature.
    func columns(_ values: [Double]) -> [[Double]] {
        (0..<Feature.count).map { f in values.map { $0 + Double(f) / 100 } }
    }

    @Test func keepsTheLastFiniteRowsOfABatchAndWraps() {
        let window = DriftWindow(capacity: 4)
        // A row with a NaN in one feature only is skipped as a whole.
        var batch = columns([1, 2, 3])
        batch[5][1] = .nan
        window.add(columns: batch)
        #expect(window.count == 2)
        #expect(window.snapshot()[0] == [1, 3])
        // Longer than the window: only its last 4 rows are looked at (the infinite one is skipped),
        // written on from slot 2 round the ring.
        var long = columns([10, 11, 12, 13, 14, 15])
        long[8][3] = .infinity
        window.add(columns: long)
        #expect(window.count == 4)
        #expect(window.snapshot()[0] == [15, 3, 12, 14])
        #expect(window.snapshot()[8] == [15, 3, 12, 14].map { $0 + 8.0 / 100 })
    }

    @Test func raggedOrEmptyColumnsAddNothing() {
        let window = DriftWindow(capacity: 4)
        var ragged = columns([1, 2])
        ragged[2].removeLast()
        window.add(columns: ragged)
        window.add(columns: columns([]))
        window.add(columns: Array(columns([1]).prefix(3)))
        #expect(window.count == 0)
    }
}
