import AsyncTimeout
import Foundation
import Logging
import LoupeProtocol
import NIOCore
import Synchronization
import TokenStore

/// Checks partner tokens for the gateway, from a cache of the token store kept fresh by a
/// refresher: every `refreshInterval` it reads the store's change counter and, when it moved,
/// reloads the tokens (so a revocation or rotation made anywhere applies within that
/// interval plus one query), flushes usage counters (daily quotas) and the audit queue.
///
/// It fails closed: when the store has not answered for `staleAfter`, handshakes and calls
/// get UNAVAILABLE, and a token missing from the cache is looked up in the store (with a
/// timeout) before it is refused.
final class TokenAuthority: Sendable {
    let store: any TokenStore
    private let configuration: GatewayConfiguration
    private let logger: Logger
    let audit: AuditLog
    /// Shared rate limits (a store that offers them, unless turned off); nil: per gateway.
    let leasing: RateLeasing?
    /// The clock the buckets run on.
    private let clock: GatewayClock
    private let states = Mutex<[String: TokenState]>([:])
    private let seenGeneration = Mutex<Int64?>(nil)
    /// Uptime nanoseconds of the last successful refresh; 0 = never.
    private let lastSuccess = Atomic<UInt64>(0)
    private let storeDown = Atomic<Bool>(false)
    /// One refresh at a time (the refresher's and an explicit one must not flush twice).
    private let refreshing = Mutex<Bool>(false)

    init(
        store: any TokenStore, configuration: GatewayConfiguration, logger: Logger, audit: AuditLog,
        clock: GatewayClock = .system, leasing: RateLeasing? = nil
    ) {
        self.store = store
        self.clock = clock
        self.leasing = leasing
        self.configuration = configuration
        self.logger = logger
        self.audit = audit
    }

    /// A refusal of a handshake.
    struct Refusal: Error {
        var error: ProtocolError
        var reason: String
        var tokenID: String?
        var principal: String?
    }

    /// Whether rate limits are shared with other gateways through the store.
    var sharesRateLimits: Bool { leasing != nil }

    /// Every token known now.
    var allStates: [TokenState] { states.withLock { Array($0.values) } }

    /// Whether the cache is recent enough to trust.
    var isFresh: Bool {
        let last = lastSuccess.load(ordering: .relaxed)
        guard last > 0 else { return false }
        let age = Int64(NIODeadline.now().uptimeNanoseconds) - Int64(last)
        return age <= configuration.tokenStaleAfter.nanoseconds
    }

    var unavailableError: ProtocolError {
        ProtocolError(
            code: .unavailable, message: "the gateway cannot reach its token store; try again shortly",
            retryAfterMilliseconds: UInt32(clamping: configuration.tokenRefreshInterval.nanoseconds / 1_000_000 * 4))
    }

    // MARK: Handshake

    /// The handshake's fast path, on the event loop: a verdict from the token's shape and the
    /// cache alone, or nil when the store must be asked (`authenticate`).
    func authenticateFromCache(_ raw: String) -> Result<TokenState, Refusal>? {
        guard !raw.isEmpty, let token = try? AccessToken.parse(raw), isFresh,
            let state = states.withLock({ $0[token.id] })
        else {
            // Malformed, stale or unknown: the full path says which (and looks up unknown ids).
            return raw.isEmpty || (try? AccessToken.parse(raw)) == nil || !isFresh ? verdict(raw, nil) : nil
        }
        return verdict(raw, state)
    }

    /// Checks a presented token: its shape and checksum (no lookup), then the cache (or the
    /// store), the secret's hash (constant time), revocation and expiry.
    func authenticate(_ raw: String) async -> Result<TokenState, Refusal> {
        if let cached = authenticateFromCache(raw) { return cached }
        guard let token = try? AccessToken.parse(raw) else { return verdict(raw, nil) }
        let fetched: TokenRecord?
        do {
            fetched = try await withTimeout(configuration.storeTimeout) { try await self.store.record(id: token.id) }
        } catch {
            logger.error("token store lookup failed", metadata: ["token_id": "\(token.id)", "error": "\(error)"])
            return .failure(Refusal(error: unavailableError, reason: "store_unavailable", tokenID: token.id))
        }
        return verdict(raw, fetched.map(install))
    }

    /// The verdict on `raw` given its cached state (nil: not known).
    private func verdict(_ raw: String, _ state: TokenState?) -> Result<TokenState, Refusal> {
        guard !raw.isEmpty else {
            return .failure(Refusal(
                error: ProtocolError(
                    code: .unauthenticated, message: "Hello carries no token; partners need a Loupe token (loupe token create)"),
                reason: "missing_token"))
        }
        let token: AccessToken
        do {
            token = try AccessToken.parse(raw)
        } catch {
            return .failure(Refusal(
                error: ProtocolError(code: .unauthenticated, message: error.description),
                reason: error == .badChecksum ? "bad_checksum" : "malformed_token"))
        }
        guard isFresh else {
            return .failure(Refusal(error: unavailableError, reason: "store_unavailable", tokenID: token.id))
        }
        guard let state else {
            return .failure(Refusal(
                error: ProtocolError(code: .unauthenticated, message: "unknown token"), reason: "unknown_token",
                tokenID: token.id))
        }
        let record = state.record
        guard token.matches(storedHash: record.secretHash) else {
            return .failure(Refusal(
                error: ProtocolError(code: .unauthenticated, message: "unknown token"), reason: "bad_secret",
                tokenID: token.id, principal: record.name))
        }
        if let (error, reason) = state.validity() {
            return .failure(Refusal(error: error, reason: reason, tokenID: token.id, principal: record.name))
        }
        return .success(state)
    }

    private func install(_ record: TokenRecord) -> TokenState {
        states.withLock { states in
            if let existing = states[record.id] {
                existing.update(record, now: clock.now())
                return existing
            }
            let state = TokenState(record: record, leasing: leasing, now: clock.now())
            states[record.id] = state
            return state
        }
    }

    // MARK: Refreshing

    /// Refreshes until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(configuration.tokenRefreshInterval.nanoseconds))
            if Task.isCancelled { break }
            await refresh()
        }
    }

    /// One refresher tick: tokens (when the change counter moved), usage, audit.
    @discardableResult
    func refresh() async -> Bool {
        while !refreshing.withLock({ busy in
            if busy { return false }
            busy = true
            return true
        }) {
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        defer { refreshing.withLock { $0 = false } }
        let ok: Bool
        do {
            let generation = try await withTimeout(configuration.storeTimeout) { try await self.store.generation() }
            if generation != seenGeneration.withLock({ $0 }) {
                let records = try await withTimeout(configuration.storeTimeout) { try await self.store.records() }
                apply(records)
                seenGeneration.withLock { $0 = generation }
            }
            lastSuccess.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
            if storeDown.exchange(false, ordering: .relaxed) { logger.notice("the token store is reachable again") }
            ok = true
        } catch {
            if !storeDown.exchange(true, ordering: .relaxed) {
                logger.error(
                    "cannot reach the token store; connections and calls get UNAVAILABLE once the cache is older than \(configuration.tokenStaleAfter)",
                    metadata: ["error": "\(error)"])
            }
            ok = false
        }
        await flushUsage()
        await flushAudit()
        return ok
    }

    private func apply(_ records: [TokenRecord]) {
        let now = clock.now()
        let removed: [TokenState] = states.withLock { states in
            var seen = Set<String>()
            for record in records {
                seen.insert(record.id)
                if let existing = states[record.id] {
                    existing.update(record, now: now)
                } else {
                    states[record.id] = TokenState(record: record, leasing: leasing, now: now)
                }
            }
            let gone = states.keys.filter { !seen.contains($0) }
            return gone.compactMap { states.removeValue(forKey: $0) }
        }
        for state in removed { state.markRemoved() }
    }

    private func flushUsage() async {
        let all = states.withLock { Array($0.values) }
        var deltas: [String: Int64] = [:]
        var anyQuota = false
        for state in all {
            let n = state.beginFlush()
            if n > 0 { deltas[state.id] = n }
            if state.hasQuota { anyQuota = true }
        }
        guard !deltas.isEmpty || anyQuota else { return }
        let now = Date()
        let day = TokenState.dayNumber(now)
        let batch = deltas
        do {
            let totals = try await withTimeout(configuration.storeTimeout) {
                try await self.store.addUsage(batch, day: utcDay(now))
            }
            for state in all { state.commitFlush(total: totals[state.id], day: day) }
        } catch {
            for state in all { state.abortFlush() }
        }
    }

    private func flushAudit() async {
        let events = audit.drain()
        guard !events.isEmpty else { return }
        do {
            try await withTimeout(configuration.storeTimeout) { try await self.store.appendAudit(events) }
        } catch {
            audit.requeue(events)
        }
    }
}

