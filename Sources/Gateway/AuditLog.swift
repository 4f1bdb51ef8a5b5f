import Foundation
import Logging
import Synchronization
import TokenStore

/// Refused and failed attempts, on their way to the log and the token store's audit table.
///
/// Each event is logged when it happens (handshake refusals at `warning`), except the
/// frequent ones (rate limits, quotas) which are coalesced: the gateway's refresher drains
/// the queue every tick, writes one row per (event, token, peer, detail) with a count, and logs
/// one summary line per row. Events name a token by its public id only, never its secret.
final class AuditLog: Sendable {
    private struct Key: Hashable {
        var event: String
        var tokenID: String?
        var principal: String?
        var remote: String?
        var detail: String
    }

    private let queue = Mutex<(events: [Key: AuditEvent], dropped: Int)>(([:], 0))
    private let logger: Logger
    private let metrics: GatewayMetrics
    /// Distinct events kept while the store cannot take them.
    static let capacity = 10_000

    init(logger: Logger, metrics: GatewayMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    /// Records one refusal. `reason` is the metric's reason; `quiet` skips the immediate log
    /// line (it is summarised at the next flush).
    func record(
        _ reason: String, tokenID: String?, principal: String?, remote: String?, detail: String, quiet: Bool = false
    ) {
        metrics.rejected(reason, principal: principal)
        if !quiet {
            var metadata: Logger.Metadata = ["reason": "\(reason)", "detail": "\(detail)"]
            if let tokenID { metadata["token_id"] = "\(tokenID)" }
            if let principal { metadata["principal"] = "\(principal)" }
            if let remote { metadata["remote"] = "\(remote)" }
            logger.warning("refused", metadata: metadata)
        }
        let key = Key(event: reason, tokenID: tokenID, principal: principal, remote: remote, detail: detail)
        queue.withLock { queue in
            if var existing = queue.events[key] {
                existing.count += 1
                queue.events[key] = existing
            } else if queue.events.count < Self.capacity {
                queue.events[key] = AuditEvent(
                    at: Date(), event: reason, tokenID: tokenID, principal: principal, remote: remote, detail: detail)
            } else {
                queue.dropped += 1
            }
        }
    }

    /// Takes the queued events (oldest first).
    func drain() -> [AuditEvent] {
        let (events, dropped) = queue.withLock { queue -> ([AuditEvent], Int) in
            defer { queue = ([:], 0) }
            return (Array(queue.events.values), queue.dropped)
        }
        if dropped > 0 {
            logger.error("the audit queue was full; events were dropped", metadata: ["dropped": "\(dropped)"])
        }
        for event in events where event.count > 1 || event.event.hasPrefix("rate_limited") || event.event == "quota_exhausted" {
            logger.notice("refused \(event.count) time(s)", metadata: [
                "reason": "\(event.event)", "token_id": "\(event.tokenID ?? "-")", "principal": "\(event.principal ?? "-")",
                "detail": "\(event.detail)",
            ])
        }
        return events.sorted { $0.at < $1.at }
    }

    /// Puts events back after the store refused them (they are written at the next flush).
    func requeue(_ events: [AuditEvent]) {
        queue.withLock { queue in
            for event in events {
                let key = Key(
                    event: event.event, tokenID: event.tokenID, principal: event.principal, remote: event.remote,
                    detail: event.detail)
                if var existing = queue.events[key] {
                    existing.count += event.count
                    existing.at = min(existing.at, event.at)
                    queue.events[key] = existing
                } else if queue.events.count < Self.capacity {
                    queue.events[key] = event
                } else {
                    queue.dropped += event.count
                }
            }
        }
    }
}
