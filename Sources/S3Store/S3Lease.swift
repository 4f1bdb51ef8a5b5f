import ArtifactStore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The store's exclusive lock on S3 (``ArtifactBackend``'s guarantee 3): a lease object
/// (`PREFIX/lock`) that names its holder and how long it lasts.
///
/// ## How it works
///
/// - **Acquire**: read the lease. Absent → create it with `PutObject` + `If-None-Match: *`.
///   Released, or expired → overwrite it with `PutObject` + `If-Match: <its ETag>`. Held and
///   live → wait (polling with backoff and jitter) and try again. Of several processes racing
///   for a free lease, exactly one conditional put succeeds; the others get 412 and wait.
/// - **Expiry is judged on the server's clock**: a lease is stale when the server's `Date` on
///   the reply that read it is later than the lease's `Last-Modified` plus the TTL its holder
///   wrote into it. No two machines' clocks are compared, only the object store's with itself.
/// - **Renewal**: while the body runs, the holder rewrites the lease every TTL/3 with `If-Match`
///   on its own ETag (on the I/O threads, not blocking the body). Two missed renewals in a row
///   still leave it held.
/// - **Release**: a conditional overwrite that marks it released (`If-Match` again), so a
///   holder whose lease was taken over can never release someone else's. (A conditional
///   `DeleteObject` would do as well on AWS, but `If-Match` on `PutObject` is the one
///   condition every S3-compatible server this targets implements alike.)
///
/// ## Trade-offs
///
/// - A holder that dies leaves the lease until it expires: others wait up to one TTL (30 s by
///   default) before taking over. A shorter TTL means faster takeover and more renewal traffic.
/// - A holder that is paused longer than the TTL (a stopped VM, a stalled network) loses the
///   lease while it still believes it holds it. The lease alone cannot prevent that, so every
///   document the store writes under the lock is also a compare-and-swap: documents read under
///   the lock are written back with `If-Match` on the ETag read, new manifests with
///   `If-None-Match: *`. A holder that lost its lease therefore fails with a `conflict` error
///   instead of overwriting the new holder's alias move or version.
/// - Waiting is polling (no queue, no fairness): fine for promotions and version allocation,
///   which hold the lock for a few requests.
/// - Each locked operation costs a read and two conditional writes of a ~150-byte object on top
///   of its own requests.
final class S3Lease: Sendable {
    /// The lease document.
    struct Body: Codable, Sendable {
        var holder: String
        var acquired: String
        var ttlSeconds: Double
        var released: Bool
    }

    private struct State {
        var etag: String
        var lost = false
        var renewal: RepeatedTask?
        var inFlight: EventLoopFuture<Void>?
        var stopped = false
        var body: Body
    }

    let key: String
    private let client: S3Client
    private let state: NIOLockedValueBox<State>

    private init(key: String, client: S3Client, etag: String, body: Body) {
        self.key = key
        self.client = client
        self.state = NIOLockedValueBox(State(etag: etag, body: body))
    }

    /// True once a renewal found the lease taken over by another holder.
    var isLost: Bool { state.withLockedValue { $0.lost } }

    /// Takes the lease for `holder`, waiting while another live holder has it.
    static func acquire(key: String, holder: String, client: S3Client) throws -> S3Lease {
        let configuration = client.configuration
        let ttl = configuration.leaseDuration
        let ttlSeconds = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        let waitLimit = Double(configuration.lockWaitLimit.components.seconds)
        let started = Date()
        var pause = 0.05
        while true {
            let mine = Body(holder: holder, acquired: S3Dates.formatISO(Date()), ttlSeconds: ttlSeconds, released: false)
            let bytes = try JSONEncoder().encode(mine)
            let current = try read(key: key, client: client)
            var condition: (name: String, value: String)
            var busy: Body?
            switch current {
            case nil:
                condition = ("if-none-match", "*")
            case let current?:
                if current.body.released || current.expired || current.body.holder == holder {
                    // Free, stale, or ours from an attempt whose reply was lost.
                    condition = ("if-match", current.etag)
                } else {
                    condition = ("", "")
                    busy = current.body
                }
            }
            if busy == nil {
                let request = S3Request(
                    .PUT, key: key, headers: [condition, ("content-type", "application/json")], body: Array(bytes))
                let response = try client.send(request)
                if response.ok, let etag = response.etag {
                    let lease = S3Lease(key: key, client: client, etag: etag, body: mine)
                    lease.startRenewal(every: ttl / 3)
                    return lease
                }
                // 412: someone else won the race (or renewed); 404: released and removed meanwhile
                // — unless the bucket itself is missing, which no wait will fix.
                let error = client.error(for: response, request)
                guard response.status == 412 || response.status == 404 || response.status == 409, error.code != "NoSuchBucket"
                else {
                    throw storeError(error, client: client, what: "taking the store lock")
                }
                if Date().timeIntervalSince(started) > waitLimit {
                    throw StoreError(
                        .io, "the store lock of \(client.configuration.url) could not be taken in \(Int(waitLimit)) s: \(error)")
                }
                continue
            }
            if Date().timeIntervalSince(started) > waitLimit, let busy {
                throw StoreError(
                    .io,
                    "the store lock of \(client.configuration.url) is held by \(busy.holder) (since \(busy.acquired)); "
                        + "gave up after \(Int(waitLimit)) s")
            }
            Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.0))
            pause = min(pause * 2, 1.0)
        }
    }

    /// The lease as stored: its body, ETag, and whether it is past its TTL by the server's clock.
    struct Current {
        var body: Body
        var etag: String
        var expired: Bool
    }

    static func read(key: String, client: S3Client) throws -> Current? {
        let request = S3Request(.GET, key: key)
        let response = try client.send(request)
        if response.status == 404 { return nil }
        guard response.ok, let etag = response.etag else {
            throw storeError(client.error(for: response, request), client: client, what: "reading the store lock")
        }
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(response.body)) else {
            // Not a lease this build wrote: treat it as stale garbage that may be overwritten.
            return Current(body: Body(holder: "?", acquired: "?", ttlSeconds: 0, released: true), etag: etag, expired: true)
        }
        let now = response.headers.first(name: "date").flatMap(S3Dates.parseHTTP) ?? Date()
        let written = response.headers.first(name: "last-modified").flatMap(S3Dates.parseHTTP) ?? .distantPast
        // Last-Modified has whole seconds: allow one more.
        return Current(body: body, etag: etag, expired: now.timeIntervalSince(written) > body.ttlSeconds + 1)
    }

    private func startRenewal(every interval: Duration) {
        let nanos = Int64(interval.components.seconds) * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
        let loop = HTTPBridge.group.next()
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: .nanoseconds(nanos), delay: .nanoseconds(nanos)) {
            [weak self] task -> EventLoopFuture<Void> in
            guard let self else {
                task.cancel()
                return loop.makeSucceededVoidFuture()
            }
            return self.renewOnce(on: loop, task: task)
        }
        state.withLockedValue { $0.renewal = task }
    }

    /// One renewal attempt; failures other than losing the lease are left for the next tick.
    private func renewOnce(on loop: any EventLoop, task: RepeatedTask) -> EventLoopFuture<Void> {
        // Started and recorded under the lock, so that `release` either sees it in flight or
        // stops it from starting. (The request cannot complete synchronously with a reply, so
        // the callbacks below never run while the lock is held.)
        state.withLockedValue { s -> EventLoopFuture<Void> in
            guard !s.lost, !s.stopped, let bytes = try? JSONEncoder().encode(s.body) else {
                return loop.makeSucceededVoidFuture()
            }
            let request = S3Request(
                .PUT, key: key, headers: [("if-match", s.etag), ("content-type", "application/json")], body: Array(bytes))
            let future = client.attempt(request).map { response in
                if response.ok, let etag = response.etag {
                    self.state.withLockedValue { $0.etag = etag }
                } else if response.status == 412 || response.status == 404 {
                    self.state.withLockedValue { $0.lost = true }
                    task.cancel()
                }
            }.recover { _ in }
            s.inFlight = future
            return future
        }
    }

    /// Stops renewing and marks the lease released (best effort: when S3 cannot be reached, the
    /// lease simply expires).
    func release() {
        let renewal = state.withLockedValue { state -> RepeatedTask? in
            state.stopped = true
            return state.renewal
        }
        if let renewal {
            let cancelled = HTTPBridge.group.next().makePromise(of: Void.self)
            renewal.cancel(promise: cancelled)
            _ = try? HTTPBridge.blockingWait(cancelled.futureResult)
        }
        // Wait for a renewal in flight, so that the release's If-Match sees the ETag it set.
        if let inFlight = state.withLockedValue({ $0.inFlight }) { _ = try? HTTPBridge.blockingWait(inFlight) }
        let (etag, body, lost) = state.withLockedValue { ($0.etag, $0.body, $0.lost) }
        guard !lost else { return }
        var released = body
        released.released = true
        guard let bytes = try? JSONEncoder().encode(released) else { return }
        _ = try? client.send(
            S3Request(.PUT, key: key, headers: [("if-match", etag), ("content-type", "application/json")], body: Array(bytes)))
    }
}

/// An ``S3Error`` as the store's error type: access problems name the bucket and what to check.
func storeError(_ error: S3Error, client: S3Client, what: String) -> StoreError {
    let configuration = client.configuration
    if error.isAccessDenied {
        return StoreError(
            .io,
            "\(what): access to bucket \(configuration.bucket) at \(configuration.endpointDescription) was refused "
                + "(\(error)); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the bucket's policy")
    }
    if error.code == "NoSuchBucket" {
        return StoreError(
            .notFound, "\(what): bucket \(configuration.bucket) does not exist at \(configuration.endpointDescription) (\(error))")
    }
    if error.status == nil {
        return StoreError(.io, "\(what): the S3 endpoint is unreachable: \(error)")
    }
    return StoreError(.io, "\(what): \(error)")
}
