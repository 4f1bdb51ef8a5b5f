import LoupeProtocol

/// What answers the Retrain and GetJob calls. The server only decodes the request and sends the
/// reply; the process that runs it decides whether it runs retraining jobs at all (the `loupe`
/// command hands it a `RetrainService`), so the server does not depend on the pipeline.
/// Without one, both calls are answered `UNIMPLEMENTED`.
public protocol RetrainJobs: Sendable {
    /// Starts a job for `request`; `declaredRows` is the frame header's row count (it must equal
    /// the rows the request carries: the gateway charges by it), `requestedBy` the principal.
    func retrain(_ request: Loupe_V1_RetrainRequest, declaredRows: UInt32, requestedBy: String) throws(ProtocolError)
        -> Loupe_V1_RetrainResponse

    /// A job's progress and result.
    func job(_ request: Loupe_V1_GetJobRequest) throws(ProtocolError) -> Loupe_V1_GetJobResponse
}
