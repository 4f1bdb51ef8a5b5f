import ArtifactStore
import Catalog
import Crypto
import DiamondSchema
import Foundation
import RequestLog
import TreeModel

/// Joins realised prices to the calls that priced those stones and records, for each, what
/// every version concerned said: the version that answered the partner, and the versions live
/// now (production, the canary, the shadow, and the version a rollback of production would
/// return to), so any two can be compared on the same stones.
///
/// The join, in order:
/// 1. `principal` + `request_id`: the newest successful Predict or BatchPredict of that
///    partner with that request id, at or before the sale (request ids restart on each
///    connection, so the newest before the sale is the one).
/// 2. The diamond: the newest successful Predict of exactly that diamond (every field equal),
///    by that partner when one is named, at or before the sale.
/// 3. Neither: the outcome is kept unmatched; the live versions are still scored on it.
///
/// A Predict's logged answer is used as is; a batch row's answer is computed again from its
/// version (versions are immutable and scoring is deterministic, so it is the price that was
/// sent). An outcome whose request priced a different diamond is rejected.
public struct OutcomeIngest: Sendable {
    public let catalog: Catalog
    public let guestbook: any Guestbook
    public let model: String

    /// What an ingest did.
    public struct Summary: Sendable, Hashable, Codable {
        public var received = 0
        public var accepted = 0
        public var matchedByRequest = 0
        public var matchedByDiamond = 0
        public var unmatched = 0
        public var rejected: [OutcomeRejection] = []
        /// The versions each accepted outcome was scored with.
        public var versionsScored: [Int] = []
    }

    public init(catalog: Catalog, guestbook: any Guestbook, model: String = Catalog.defaultModel) {
        self.catalog = catalog
        self.guestbook = guestbook
        self.model = model
    }

    /// Joins and records `outcomes` (rejections' `line` is the outcome's index plus `lineOffset`).
    public func ingest(_ outcomes: [Outcome], now: Date = Date(), lineOffset: Int = 0) async throws -> Summary {
        var summary = Summary()
        summary.received = outcomes.count
        let live = try liveVersions()
        summary.versionsScored = live.sorted()
        var ensembles: [Int: Ensemble] = [:]
        func ensemble(_ version: Int) throws -> Ensemble {
            if let loaded = ensembles[version] { return loaded }
            let loaded = try catalog.ensemble(of: try catalog.store.model(name: model, version: version))
            ensembles[version] = loaded
            return loaded
        }
        let at = Int64((now.timeIntervalSince1970 * 1000).rounded())
        var scores: [OutcomeScore] = []
        for (i, outcome) in outcomes.enumerated() {
            let violations = ValidationRanges.standard.violations(in: outcome.diamond)
            if !violations.isEmpty {
                summary.rejected.append(OutcomeRejection(
                    line: i + lineOffset, reason: violations.map(\.message).joined(separator: "; ")))
                continue
            }
            let served: GuestbookRow?
            let matchedBy: String
            if let call = try await byRequest(outcome) {
                if call.method == "Predict", let asked = call.diamond, asked != outcome.logged {
                    summary.rejected.append(OutcomeRejection(
                        line: i + lineOffset,
                        reason: "request \(outcome.requestID ?? 0) of \(outcome.principal ?? "") priced a different diamond "
                            + "(\(asked.carat) ct \(asked.cut) \(asked.color) \(asked.clarity))"))
                    continue
                }
                (served, matchedBy) = (call, "request")
                summary.matchedByRequest += 1
            } else if let call = try await byDiamond(outcome) {
                (served, matchedBy) = (call, "diamond")
                summary.matchedByDiamond += 1
            } else {
                (served, matchedBy) = (nil, "none")
                summary.unmatched += 1
            }
            let servedVersion = served.flatMap { $0.modelName == model ? $0.modelVersion : nil }
            var versions = live
            if let servedVersion { versions.insert(servedVersion) }
            let id = outcome.id ?? Self.digest(outcome)
            for version in versions.sorted() {
                var price: Double, low: Double?, high: Double?
                if version == servedVersion, let call = served, call.method == "Predict", let logged = call.price {
                    (price, low, high) = (logged, call.low, call.high)
                } else {
                    let estimate: PriceEstimate
                    do { estimate = try ensemble(version).estimate(outcome.diamond) } catch {
                        throw OutcomeError("model \(model) v\(version) cannot be read to score outcomes: \(error)")
                    }
                    (price, low, high) = (estimate.price, estimate.level == nil ? nil : estimate.low,
                                          estimate.level == nil ? nil : estimate.high)
                }
                scores.append(OutcomeScore(
                    outcomeID: id, modelName: model, modelVersion: version, served: version == servedVersion,
                    matchedBy: matchedBy, atMilliseconds: at,
                    soldAtMilliseconds: outcome.soldAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) },
                    principal: outcome.principal ?? served?.principal, requestID: outcome.requestID ?? served?.requestID,
                    soldPrice: outcome.soldPrice, price: price, low: low, high: high))
            }
            summary.accepted += 1
        }
        try await guestbook.insertOutcomes(scores)
        return summary
    }

    /// Production, the canary, the shadow and production's rollback target.
    func liveVersions() throws -> Set<Int> {
        let aliases = try catalog.store.aliases(name: model)
        var versions = Set([aliases.production, aliases.canary, aliases.shadow].compactMap { $0 })
        let stack = aliases.rollbackStack(for: .production)
        if stack.count >= 2 { versions.insert(stack[stack.count - 2]) }
        if versions.isEmpty, let latest = try catalog.store.latestModel(name: model) { versions.insert(latest.version) }
        return versions
    }

    private func until(_ outcome: Outcome) -> Date? {
        outcome.soldAt.map { $0.addingTimeInterval(0.001) }
    }

    private func byRequest(_ outcome: Outcome) async throws -> GuestbookRow? {
        guard let requestID = outcome.requestID, let principal = outcome.principal else { return nil }
        let rows = try await guestbook.rows(GuestbookQuery(
            until: until(outcome), principal: principal, status: "OK", requestID: requestID, limit: 20))
        return rows.first { $0.method == "Predict" || $0.method == "BatchPredict" }
    }

    private func byDiamond(_ outcome: Outcome) async throws -> GuestbookRow? {
        try await guestbook.rows(GuestbookQuery(
            until: until(outcome), principal: outcome.principal, method: "Predict", status: "OK", diamond: outcome.logged,
            limit: 1)).first
    }

    /// A stable id from the outcome's fields, so the same outcome ingested twice counts once.
    static func digest(_ o: Outcome) -> String {
        let d = o.diamond
        let text = [
            o.principal ?? "", o.requestID.map(String.init) ?? "", "\(d.carat)", d.cut.label, d.color.label, d.clarity.label,
            "\(d.depth)", "\(d.table)", "\(d.x)", "\(d.y)", "\(d.z)", "\(o.soldPrice)",
            o.soldAt.map { "\($0.timeIntervalSince1970)" } ?? "",
        ].joined(separator: "|")
        return SHA256.hash(data: Data(text.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}
