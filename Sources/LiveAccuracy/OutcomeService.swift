import Catalog
import DiamondSchema
import Dispatch
import Foundation
import LoupeProtocol
import ModelServer
import RequestLog
import Synchronization

/// Answers ReportOutcomes with an `OutcomeIngest` on the request log's database. The principal
/// is the caller's, so a partner's outcomes join only its own calls.
public struct OutcomeService: OutcomeReports {
    let catalog: Catalog
    let guestbook: any Guestbook
    let defaultModel: String

    public init(catalog: Catalog, guestbook: any Guestbook, defaultModel: String = Catalog.defaultModel) {
        self.catalog = catalog
        self.guestbook = guestbook
        self.defaultModel = defaultModel
    }

    public func report(_ request: Loupe_V1_ReportOutcomesRequest, principal: String) throws(ProtocolError)
        -> Loupe_V1_ReportOutcomesResponse
    {
        var outcomes: [Outcome] = []
        var indices: [Int] = []
        var rejected: [Loupe_V1_RowError] = []
        func reject(_ row: Int, _ field: String, _ reason: String) {
            var error = Loupe_V1_RowError()
            error.row = UInt32(row)
            error.field = field
            error.reason = reason
            rejected.append(error)
        }
        for (i, o) in request.outcomes.enumerated() {
            guard o.hasDiamond else {
                reject(i, "diamond", "the outcome has no diamond")
                continue
            }
            let diamond: Diamond
            switch o.diamond.diamond() {
            case .success(let d): diamond = d
            case .failure(let grade):
                reject(i, "diamond.\(grade.field)", grade.message)
                continue
            }
            guard o.soldPrice.isFinite, o.soldPrice > 0 else {
                reject(i, "sold_price", "sold_price must be a positive number of dollars, got \(o.soldPrice)")
                continue
            }
            outcomes.append(Outcome(
                diamond: diamond, soldPrice: o.soldPrice,
                soldAt: o.soldUnixMs > 0 ? Date(timeIntervalSince1970: Double(o.soldUnixMs) / 1000) : nil,
                principal: principal, requestID: o.hasRequestID_p ? Int64(o.requestID) : nil,
                id: o.outcomeID.isEmpty ? nil : principal + "/" + o.outcomeID))
            indices.append(i)
        }
        let ingest = OutcomeIngest(
            catalog: catalog, guestbook: guestbook, model: request.model.isEmpty ? defaultModel : request.model)
        let taken = outcomes
        let result = Self.wait { try await ingest.ingest(taken) }
        let summary: OutcomeIngest.Summary
        switch result {
        case .success(let s): summary = s
        case .failure(let error):
            throw ProtocolError(code: .unavailable, message: "the outcomes could not be recorded: \(error)", retryAfterMilliseconds: 1000)
        }
        for r in summary.rejected { reject(indices[r.line], "request_id", r.reason) }
        var response = Loupe_V1_ReportOutcomesResponse()
        response.accepted = UInt32(summary.accepted)
        response.matchedByRequest = UInt32(summary.matchedByRequest)
        response.matchedByDiamond = UInt32(summary.matchedByDiamond)
        response.unmatched = UInt32(summary.unmatched)
        response.rejected = rejected.sorted { $0.row < $1.row }
        return response
    }

    /// Runs async work to completion from a worker thread (never a Swift concurrency thread:
    /// the server calls this on its NIO thread pool).
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        Task {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
