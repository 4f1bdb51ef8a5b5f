import LoupeUtilities
import Foundation
import Logging

/// Removes guestbook rows older than `keep`, at most every `checkInterval` (the first time at
/// once). The payload archive's sealed segments are not touched.
struct Retention {
    let keep: Duration
    let checkInterval: Duration
    private var next = ContinuousClock.now

    init(keep: Duration, checkInterval: Duration) {
        self.keep = keep
        self.checkInterval = checkInterval
    }

    /// Removes old rows when a check is due; a failure is logged and waits for the next check.
    mutating func removeIfDue(from guestbook: any Guestbook, logger: Logger) async {
        guard ContinuousClock.now >= next else { return }
        next = .now + checkInterval
        do {
            let removed = try await guestbook.deleteOlder(than: Date().addingTimeInterval(-keep.seconds))
            if removed > 0 { logger.info("removed calls past the retention", metadata: ["rows": "\(removed)"]) }
        } catch {
            logger.warning("could not remove old calls", metadata: ["error": "\(error)"])
        }
    }
}
