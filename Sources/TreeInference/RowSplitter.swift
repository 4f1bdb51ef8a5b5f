import HelperThreads

/// Splits a batch of rows into chunks that threads claim one at a time.
///
/// Chunks are claimed, not assigned: the caller's thread claims and scores chunks too, so a
/// helper thread that the OS has lent to another process (the machine is shared with builds and
/// a training job) simply gets fewer chunks and never holds the batch up for long. Every row is
/// scored by the same code whichever thread runs it, so the split never changes a result.
struct RowSplitter {
    let rows: Int
    let threads: Int
    let chunk: Int

    /// Online cores (at least 1).
    static var coreCount: Int { HelperPool.coreCount }

    init(rows: Int, threads: Int) {
        self.rows = rows
        self.threads = max(1, min(threads, rows / 64))
        // About eight chunks per thread for balance, whole 64-row groups, at most 8,192 rows.
        let target = (rows + 8 * self.threads - 1) / (8 * self.threads)
        self.chunk = self.threads == 1 ? max(rows, 1) : min(8192, max(64, (target + 63) / 64 * 64))
    }

    /// Calls `body(start, count)` for disjoint chunks covering 0..<rows, on the calling thread
    /// and up to `threads - 1` of the process's helper threads (`HelperPool`).
    func run(_ body: @Sendable (Int, Int) -> Void) {
        if threads == 1 {
            if rows > 0 { body(0, rows) }
            return
        }
        let chunks = (rows + chunk - 1) / chunk
        HelperPool.shared.run(tasks: chunks, helpers: threads - 1) { c in
            let start = c * chunk
            body(start, min(chunk, rows - start))
        }
    }
}
