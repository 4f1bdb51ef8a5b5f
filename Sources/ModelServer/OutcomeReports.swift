import LoupeProtocol

/// What answers ReportOutcomes: joins the sale prices a partner feeds back to its calls and
/// records them. The process provides it (the `loupe` command: the request log's database);
/// without one the call is answered `UNIMPLEMENTED`. It may block (it runs on a worker thread).
public protocol OutcomeReports: Sendable {
    /// Records `request`'s outcomes as reported by `principal` (only its own calls are joined).
    func report(_ request: Loupe_V1_ReportOutcomesRequest, principal: String) throws(ProtocolError)
        -> Loupe_V1_ReportOutcomesResponse
}
