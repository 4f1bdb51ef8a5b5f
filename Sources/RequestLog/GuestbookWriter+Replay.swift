import Foundation

extension GuestbookWriter {
    /// Replays spill files, oldest first; false when the database failed. Past `deadline` it
    /// stops between batches (a file cut short is replayed whole next time: inserts of rows
    /// already in the guestbook change nothing).
    func replaySpill(until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        for file in spill.closedFiles() {
            let rows: [GuestbookRow]
            do {
                rows = try SpillJournal.rows(of: file)
            } catch {
                logger.error("a spill file cannot be read; moved aside", metadata: ["file": "\(file)", "error": "\(error)"])
                try? FileManager.default.moveItem(atPath: file, toPath: file + ".unreadable")
                continue
            }
            var start = 0
            while start < rows.count {
                if let deadline, ContinuousClock.now >= deadline {
                    spill.markDirty()  // the writer takes it from here
                    logger.notice("spilled calls are still being replayed into the guestbook; serving meanwhile",
                                  metadata: ["file": "\(file)"])
                    return true
                }
                let chunk = Array(rows[start..<min(rows.count, start + configuration.batchSize)])
                do {
                    try await guestbook.insert(chunk)
                } catch {
                    spill.markDirty()
                    noteFailure(error)
                    return false
                }
                start += chunk.count
                // New calls' rows go first: replay yields between batches.
                if pendingCount > 0, !(await commitPending()) {
                    spill.markDirty()
                    return false
                }
            }
            // Counted before the file goes, so "no spill file left" implies the count is complete.
            counters.add(.replayed, rows.count)
            try? FileManager.default.removeItem(atPath: file)
            logger.info("replayed spilled calls into the guestbook", metadata: ["rows": "\(rows.count)"])
        }
        return true
    }
}
