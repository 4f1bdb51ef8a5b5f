import Foundation
import Testing
import TokenStore
@testable import Gateway

/// The arithmetic of shared rate limits on a simulated clock: one gateway's leased budget, and
/// several gateways leasing from one shared bucket (`SharedBuckets`, the same rules as the
/// PostgreSQL statement) while the traffic moves between them.
@Suite struct SharedRateLimitTests {
    typealias Limit = SharedRateLimit<Int>

    static let fiftyPerSecond = RateLimits(callsPerSecond: 50, callBurst: 10, rowsPerSecond: 0, rowBurst: 0)

    @Test func aSliceIsATenthOfASecondOfTheRateAtMostHalfTheBurstAtLeastOne() {
        #expect(LeasedBucket(rate: 50, burst: 10, sliceSeconds: 0.1).slice == 5)
        #expect(LeasedBucket(rate: 1000, burst: 2000, sliceSeconds: 0.1).slice == 100)
        #expect(LeasedBucket(rate: 1000, burst: 20, sliceSeconds: 0.1).slice == 10)
        #expect(LeasedBucket(rate: 5, burst: 10, sliceSeconds: 0.1).slice == 1)
        #expect(LeasedBucket(rate: 0, burst: 10, sliceSeconds: 0.1).isUnlimited)
        // A burst of 0 with a rate is 1, as in this gateway's own buckets.
        #expect(LeasedBucket(rate: 10, burst: 0, sliceSeconds: 0.1).burst == 1)
    }

    @Test func theFirstCallWaitsThenTheSliceServesWithoutTheStore() {
        var limit = Limit(limits: Self.fiftyPerSecond, sliceSeconds: 0.1)
        let c = LeaseConditions(now: 0)
        let (first, ask) = limit.admit(rows: 1, ticket: 1, c)
        #expect(first == .waiting)
        // The waiting call plus a slice.
        #expect(ask == LeaseAsk(calls: 6, rows: 0))
        // A second call queues behind the lease in flight; no second lease.
        let (second, none) = limit.admit(rows: 1, ticket: 2, c)
        #expect(second == .waiting && none == nil)
        let (resolved, next) = limit.leased(RateLease(calls: 6, rows: 0), c)
        #expect(resolved.map(\.0) == [1, 2] && resolved.allSatisfy { $0.1 == .admitted })
        // The second call was not in the ask: the slice paid for it, and 4 are left.
        #expect(limit.calls.held == 4 && next == nil)
        // 4 more in memory; the one that leaves less than a quarter slice asks for a top-up.
        var asks: [LeaseAsk] = []
        for i in 0..<4 {
            let (decision, ask) = limit.admit(rows: 1, ticket: 10 + i, c)
            #expect(decision == .admitted)
            if let ask { asks.append(ask) }
        }
        #expect(asks == [LeaseAsk(calls: 4, rows: 0)])
    }

    @Test func anEmptySharedBucketRefusesAtOnceUntilItRefills() {
        var limit = Limit(limits: Self.fiftyPerSecond, sliceSeconds: 0.1)
        _ = limit.admit(rows: 1, ticket: 1, LeaseConditions(now: 0))
        _ = limit.admit(rows: 1, ticket: 2, LeaseConditions(now: 0))
        // The other gateways took the bucket: only one call's worth came back.
        let (resolved, next) = limit.leased(RateLease(calls: 1, rows: 0), LeaseConditions(now: 0))
        #expect(resolved.count == 2 && resolved[0].1 == .admitted && next == nil)
        guard case .refused(let wait, true) = resolved[1].1 else {
            Issue.record("the second call should be refused: \(resolved[1].1)")
            return
        }
        // 5 short of the 6 asked: 0.1 s at 50/s (capped at a slice's time).
        #expect(abs(wait - 0.1) < 1e-9)
        // Until then, refused without asking the store.
        let (early, noAsk) = limit.admit(rows: 1, ticket: 3, LeaseConditions(now: 0.05))
        #expect(noAsk == nil)
        guard case .refused(let left, true) = early else { Issue.record("early: \(early)"); return }
        #expect(abs(left - 0.05) < 1e-9)
        // Then a call asks again.
        let (later, again) = limit.admit(rows: 1, ticket: 4, LeaseConditions(now: 0.1))
        #expect(later == .waiting && again == LeaseAsk(calls: 6, rows: 0))
    }

    @Test func rowsAreLeasedByTheCallsSizeAndAnOversizeCallIsTheCallersToRefuse() {
        let limits = RateLimits(callsPerSecond: 0, callBurst: 0, rowsPerSecond: 1000, rowBurst: 2000)
        var limit = Limit(limits: limits, sliceSeconds: 0.1)
        let (decision, ask) = limit.admit(rows: 500, ticket: 1, LeaseConditions(now: 0))
        #expect(decision == .waiting && ask == LeaseAsk(calls: 0, rows: 600))
        let (resolved, _) = limit.leased(RateLease(calls: 0, rows: 600), LeaseConditions(now: 0))
        #expect(resolved.count == 1 && resolved[0].1 == .admitted && limit.rows.held == 100)
        // Nothing held for calls: they are unlimited.
        #expect(limit.calls.isUnlimited && limit.calls.held == 0)
        // An unlimited token never asks.
        var free = Limit(limits: .unlimited, sliceSeconds: 0.1)
        let (admitted, none) = free.admit(rows: 1_000_000, ticket: 1, LeaseConditions(now: 0))
        #expect(admitted == .admitted && none == nil)
    }

    @Test func aFailedLeaseFallsBackToAShareUntilTheStoreAnswers() {
        var limit = Limit(limits: Self.fiftyPerSecond, sliceSeconds: 0.1)
        let down = LeaseConditions(now: 0, storeReachable: false, share: 1.0 / 3, retryInterval: 1)
        _ = limit.admit(rows: 1, ticket: 1, LeaseConditions(now: 0))
        let resolved = limit.leaseFailed(down)
        // A third of the burst (3.33) and of the rate (16.7/s), the waiting call first.
        #expect(resolved.count == 1 && resolved[0].1 == .admitted)
        var admitted = 1
        for i in 0..<10 where limit.admit(rows: 1, ticket: i, down).0 == .admitted { admitted += 1 }
        #expect(admitted == 3)
        // Over the next second (in 10 ms steps), a third of the rate, and no lease asked before
        // the retry interval is up.
        for step in 1..<100 {
            let c = LeaseConditions(now: Double(step) / 100, storeReachable: false, share: 1.0 / 3, retryInterval: 1)
            let (decision, ask) = limit.admit(rows: 1, ticket: step, c)
            #expect(ask == nil)
            if decision == .admitted { admitted += 1 }
        }
        #expect(admitted == 3 + 16)
        // At the retry interval a call is still decided locally, and a lease goes out with it.
        let (decision, ask) = limit.admit(
            rows: 1, ticket: 0, LeaseConditions(now: 1, storeReachable: false, share: 1.0 / 3, retryInterval: 1))
        #expect(decision == .admitted && ask == LeaseAsk(calls: 5, rows: 0))
        // The store answers: back to leasing.
        _ = limit.leased(RateLease(calls: 5, rows: 0), LeaseConditions(now: 1.01))
        #expect(limit.fallback == nil && limit.calls.held == 5)
    }

    @Test func aStoreKnownDownSendsANewTokenToItsShareWithoutWaiting() {
        var limit = Limit(limits: Self.fiftyPerSecond, sliceSeconds: 0.1)
        let down = LeaseConditions(now: 0, storeReachable: false, share: 0.5, retryInterval: 1)
        let (decision, ask) = limit.admit(rows: 1, ticket: 1, down)
        #expect(decision == .admitted && ask == nil && limit.fallback?.share == 0.5)
    }

    @Test func shutdownGivesTheHeldBudgetBack() {
        var limit = Limit(limits: Self.fiftyPerSecond, sliceSeconds: 0.1)
        _ = limit.admit(rows: 1, ticket: 1, LeaseConditions(now: 0))
        _ = limit.leased(RateLease(calls: 6, rows: 0), LeaseConditions(now: 0))
        #expect(limit.release() == LeaseAsk(calls: -5, rows: 0))
        #expect(limit.release() == nil)
    }

    @Test func sharedBucketsFollowTheStoresRules() {
        var buckets = SharedBuckets()
        let limits = Self.fiftyPerSecond
        // New: full. Then short, refilled at the rate, capped at the burst, given back.
        #expect(buckets.lease("t", limits, calls: 3, rows: 0, at: 100).calls == 3)
        #expect(buckets.lease("t", limits, calls: 10, rows: 0, at: 100).calls == 7)
        #expect(buckets.lease("t", limits, calls: 10, rows: 0, at: 100.125).calls == 6.25)
        #expect(buckets.lease("t", limits, calls: -4, rows: 0, at: 100.125).calls == -4)
        #expect(buckets.lease("t", limits, calls: 10, rows: 0, at: 100.125).calls == 4)
        #expect(buckets.lease("t", limits, calls: -5, rows: 0, at: 200).calls == 0)
        #expect(buckets.lease("t", limits, calls: 20, rows: 0, at: 200).calls == 10)
        // A clock behind adds nothing.
        #expect(buckets.lease("t", limits, calls: 1, rows: 0, at: 150).calls == 0)
    }

    // MARK: Several gateways

    /// Three gateways, one token at 50 calls/s (burst 10), for 60 simulated seconds in 1 ms
    /// steps; leases take 2 ms. The partner's traffic moves: all on one gateway, then spread,
    /// then pouring into all three at once, then idle, then back. However it moves, over every
    /// window the gateways together admit at most burst + rate × t + 3 slices — and, offered
    /// more than the rate, at least the rate less the slices left unspent.
    @Test func threeGatewaysTogetherKeepToTheRateWhereverTheTrafficGoes() {
        let rate = 50.0, burst = 10.0, gateways = 3
        var run = Simulation(limits: Self.fiftyPerSecond, gateways: gateways, latency: 0.002)
        // Calls per second offered to each gateway, per phase of 10 s.
        let phases: [[Double]] = [[200, 0, 0], [70, 70, 70], [400, 400, 400], [0, 0, 0], [0, 20, 20], [10, 0, 200]]
        var waitsUnderTheRate = 0
        for (index, offered) in phases.enumerated() {
            let before = run.waited
            run.drive(from: Double(index) * 10, seconds: 10, offered: offered)
            if index == 4 { waitsUnderTheRate = run.waited - before }
        }
        let slice = LeasedBucket(rate: rate, burst: burst, sliceSeconds: 0.1).slice
        let slack = Double(gateways) * slice
        for window in [0.05, 0.2, 1, 5, 60] {
            let most = run.mostAdmitted(within: window)
            #expect(Double(most) <= burst + rate * window + slack, "\(most) calls within \(window) s")
        }
        // Overloaded phases (0-10 s, 20-30 s) admit the rate, less at most the slices held.
        for start in [0.0, 20.0] {
            let admitted = Double(run.admitted(from: start + 1, to: start + 10))
            #expect(admitted >= rate * 9 - slack && admitted <= rate * 9 + burst + slack, "\(admitted) in 9 s from \(start + 1)")
        }
        // The moderate phase (70/s per gateway: 210/s offered) is capped too.
        #expect(Double(run.admitted(from: 10, to: 20)) <= rate * 10 + burst + slack)
        // Under the rate (40/s offered), everything passes, and a call hardly ever waits for a
        // lease: the top-ups land before the slice is spent.
        #expect(Double(run.admitted(from: 41, to: 50)) >= 0.99 * 40 * 9)
        #expect(waitsUnderTheRate <= 2)
        // The store sees a lease per 3/4 slice admitted, plus, when overloaded, about one per
        // slice's time per gateway.
        #expect(Double(run.leases) < Double(run.times.count) / (0.75 * slice) + 30 * 10 * Double(gateways))
    }

    /// A gateway dies holding its slice: the others keep admitting; the budget it took is lost
    /// to them (under-admission by at most one slice), never added.
    @Test func aDeadGatewayOnlyStrandsItsSlice() {
        var run = Simulation(limits: Self.fiftyPerSecond, gateways: 2, latency: 0.002)
        run.drive(from: 0, seconds: 5, offered: [100, 100])
        run.kill(1)
        run.drive(from: 5, seconds: 5, offered: [100, 0])
        let admitted = Double(run.admitted(from: 6, to: 10))
        #expect(admitted >= 50 * 4 - 5 && admitted <= 50 * 4 + 10 + 5)
    }
}

/// The shared buckets as the PostgreSQL statement keeps them (`PostgresTokenStore.leaseSQL`):
/// per token, both buckets full when new, refilled from the last time seen (never backwards),
/// capped at the burst; a grant is at most what is there; a negative amount gives back up to the
/// burst.
struct SharedBuckets {
    private var levels: [String: (calls: Double, rows: Double, at: Double)] = [:]

    mutating func lease(_ id: String, _ limits: RateLimits, calls: Double, rows: Double, at now: Double) -> RateLease {
        var level = levels[id] ?? (limits.callBurst, limits.rowBurst, now)
        let elapsed = max(0, now - level.at)
        func take(_ held: inout Double, rate: Double, burst: Double, want: Double) -> Double {
            guard rate > 0 else { return 0 }
            let refilled = min(burst, held + elapsed * rate)
            let grant = want >= 0 ? min(want, max(0, refilled)) : max(want, refilled - burst)
            held = refilled - grant
            return grant
        }
        let c = take(&level.calls, rate: limits.callsPerSecond, burst: limits.callBurst, want: calls)
        let r = take(&level.rows, rate: limits.rowsPerSecond, burst: limits.rowBurst, want: rows)
        level.at = max(level.at, now)
        levels[id] = level
        return RateLease(calls: c, rows: r)
    }
}

/// Gateways leasing one token's budget from `SharedBuckets` on a simulated clock, each offered
/// calls at a steady pace; records when each call was admitted.
struct Simulation {
    let limits: RateLimits
    let latency: Double
    var gateways: [SharedRateLimit<Int>?]
    var buckets = SharedBuckets()
    /// Leases on their way back: gateway, grant, when it arrives.
    var inFlight: [(gateway: Int, grant: RateLease, at: Double)] = []
    /// When each admitted call was admitted.
    var times: [Double] = []
    var waiting: [Int: Double] = [:]
    var waited = 0
    var leases = 0
    var nextTicket = 0
    /// Calls owed to each gateway by its offered pace.
    var owed: [Double]

    init(limits: RateLimits, gateways count: Int, latency: Double) {
        self.limits = limits
        self.latency = latency
        gateways = Array(repeating: SharedRateLimit(limits: limits, sliceSeconds: 0.1), count: count)
        owed = Array(repeating: 0, count: count)
    }

    mutating func kill(_ gateway: Int) { gateways[gateway] = nil }

    mutating func drive(from start: Double, seconds: Double, offered: [Double]) {
        let step = 0.001
        for tick in 0..<Int((seconds / step).rounded()) {
            let now = start + Double(tick) * step
            deliver(upTo: now)
            for g in gateways.indices where gateways[g] != nil {
                owed[g] += offered[g] * step
                while owed[g] >= 1 {
                    owed[g] -= 1
                    nextTicket += 1
                    let (decision, ask) = gateways[g]!.admit(rows: 1, ticket: nextTicket, LeaseConditions(now: now))
                    switch decision {
                    case .admitted: times.append(now)
                    case .waiting:
                        waited += 1
                        waiting[nextTicket] = now
                    case .refused: break
                    }
                    if let ask { send(ask, from: g, at: now) }
                }
            }
        }
        deliver(upTo: start + seconds)
    }

    private mutating func send(_ ask: LeaseAsk, from gateway: Int, at now: Double) {
        leases += 1
        let grant = buckets.lease("token", limits, calls: ask.calls, rows: ask.rows, at: now)
        inFlight.append((gateway, grant, now + latency))
    }

    private mutating func deliver(upTo now: Double) {
        while let index = inFlight.firstIndex(where: { $0.at <= now }) {
            let lease = inFlight.remove(at: index)
            guard gateways[lease.gateway] != nil else { continue }
            let (resolved, next) = gateways[lease.gateway]!.leased(lease.grant, LeaseConditions(now: lease.at))
            for (ticket, decision) in resolved {
                if decision == .admitted { times.append(lease.at) }
                waiting[ticket] = nil
            }
            if let next { send(next, from: lease.gateway, at: lease.at) }
        }
    }

    /// The most calls admitted within any window of `seconds`.
    func mostAdmitted(within seconds: Double) -> Int {
        let sorted = times.sorted()
        var most = 0
        var low = 0
        for high in sorted.indices {
            while sorted[high] - sorted[low] > seconds + 1e-9 { low += 1 }
            most = max(most, high - low + 1)
        }
        return most
    }

    func admitted(from start: Double, to end: Double) -> Int {
        times.filter { $0 >= start && $0 < end }.count
    }
}
