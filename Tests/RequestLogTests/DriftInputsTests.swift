import Foundation
import Scheduling
import RequestLog
import Testing

extension RequestLogSuites {
    /// With the request log on, the drift trigger reads recent Predict inputs from the guestbook.
    @Suite struct DriftInputsTests {
        @Test func driftReadsRecentPredictInputsFromTheGuestbook() async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            let book = try #require(try await makeGuestbook(.sqlite, scratch: scratch))
            let log = try RequestLog(
                configuration: RequestLogConfiguration(archiveDirectory: scratch.archive, syncAppends: false),
                guestbook: book, store: scratch.store)
            try await log.start()
            let inputs = GuestbookDriftInputs(log: log, capacity: 15)
            try await Task.sleep(for: .milliseconds(5))
            for i in 0..<20 { log.record(try predictCall(i)) }
            #expect(await log.flush(timeout: patience))
            // Each ask returns the cache and refreshes it in the background.
            var seen = 0
            for _ in 0..<60_000 where seen < 15 {
                seen = inputs.count
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(seen == 15)  // capped at the capacity, newest first
            let columns = inputs.snapshot()
            #expect(columns.count == 9 && columns.allSatisfy { $0.count == 15 })
            #expect(columns[0].first == 1.19)  // the newest call's carat
            #expect(Set(columns[1]) == [4])  // Ideal, as its ordinal code
            // After a retrain the window starts again from new calls only.
            inputs.clear()
            try await Task.sleep(for: .milliseconds(5))
            #expect(inputs.count == 0)
            for i in 0..<3 { log.record(try predictCall(i)) }
            #expect(await log.flush(timeout: patience))
            seen = 0
            for _ in 0..<60_000 where seen < 3 {
                seen = inputs.count
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(seen == 3)
            await log.shutdown()
        }
    }
}
