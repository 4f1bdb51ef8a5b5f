import Foundation
import LoupeUtilities

/// A duty that exactly one of the processes sharing a store should do at a time — the
/// retraining scheduler, the inbox, the rollout guard — held as a lease at
/// `records/leases/<name>.json` (`{"holder", "expires"}`).
///
/// `renew` takes the lease when it is free or has expired and extends it while held, under the
/// store's exclusive lock (a `flock` on a local store, the backend's lock elsewhere), so two
/// processes never both hold it. The holder renews well within `duration`; a holder that dies
/// stops renewing, and another process takes over once the lease expires: within `duration`
/// plus one renewal period — at once when the holder was a process on this host that is gone
/// (`ProcessOwner.isGone`: a restarted `loupe serve` need not wait out its predecessor's
/// lease). The expiry is wall-clock time, so the machines' clocks must agree to well within
/// `duration` (NTP does).
public final class StoreLease: Sendable {
    public let store: ArtifactStore
    public let name: String
    /// Who holds it: unique per process (`ProcessOwner.current`, `host:pid`).
    public let holder: String
    public let duration: TimeInterval

    struct Document: Codable {
        var holder: String
        var expires: Date
    }

    public init(store: ArtifactStore, name: String, holder: String = ProcessOwner.current, duration: TimeInterval = 15) {
        self.store = store
        self.name = name
        self.holder = holder
        self.duration = duration
    }

    var key: String { ArtifactStore.recordKey("leases", name) }

    /// Takes or extends the lease; returns whether this process holds it until `now + duration`.
    public func renew(now: Date = Date()) throws -> Bool {
        try ArtifactName.validate(name, kind: "lease")
        return try store.backend.withExclusiveLock {
            if let current = try read(), current.holder != holder, current.expires > now,
                !ProcessOwner.isGone(current.holder)
            {
                return false
            }
            try write(Document(holder: holder, expires: now.addingTimeInterval(duration)))
            return true
        }
    }

    /// Gives the lease up at once if this process holds it (a clean shutdown: the next holder
    /// need not wait for the expiry).
    public func release() throws {
        try store.backend.withExclusiveLock {
            guard let current = try read(), current.holder == holder else { return }
            try write(Document(holder: holder, expires: .distantPast))
        }
    }

    /// The current holder and expiry, if any.
    public func current() throws -> (holder: String, expires: Date)? {
        try read().map { ($0.holder, $0.expires) }
    }

    private func read() throws -> Document? {
        guard let bytes = try store.backend.readDocument(key) else { return nil }
        return try ManifestCoding.decode(Document.self, from: bytes, key: key)
    }

    private func write(_ document: Document) throws {
        try store.backend.replaceDocument(key, with: try ManifestCoding.encode(document))
    }
}
