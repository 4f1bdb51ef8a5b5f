/// The methods a frame can call, by their stable numeric id (`loupe.v1.Method`; header
/// offsets 2–3). An id is never reused.
///
/// The frame decoder passes unknown ids through (a gateway may forward methods newer than it
/// knows); `FrameHeader.method` is `nil` for them and a server answers `UNIMPLEMENTED`.
public enum Method: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The handshake, always the first call: `Hello` → `Welcome`.
    case hello = 1
    /// Liveness and readiness: `HealthRequest` → `HealthResponse`. Allowed before the handshake.
    case health = 2
    /// One diamond → price, range, model version: `PredictRequest` → `PredictResponse`.
    case predict = 3
    /// Columns of diamonds → packed prices and ranges: `BatchPredictRequest` →
    /// `BatchPredictResponse`. The header's row count says how many rows.
    case batchPredict = 4
    /// Training diamonds of the same grades and the closest carat: `FindSimilarRequest` →
    /// `FindSimilarResponse`.
    case findSimilar = 5
    /// Every model version: `ListModelsRequest` → `ListModelsResponse`.
    case listModels = 6
    /// Starts a retrain job (admin): `RetrainRequest` → `RetrainResponse`.
    case retrain = 7
    /// A job's progress and result: `GetJobRequest` → `GetJobResponse`.
    case getJob = 8
    /// Sale prices of stones the caller priced, fed back: `ReportOutcomesRequest` →
    /// `ReportOutcomesResponse`.
    case reportOutcomes = 9

    /// The method id of connection-level error frames, which answer no particular call.
    public static let noneID: UInt16 = 0

    /// The method's name as in docs/PROTOCOL.md, e.g. `BatchPredict`.
    public var description: String {
        switch self {
        case .hello: "Hello"
        case .health: "Health"
        case .predict: "Predict"
        case .batchPredict: "BatchPredict"
        case .findSimilar: "FindSimilar"
        case .listModels: "ListModels"
        case .retrain: "Retrain"
        case .getJob: "GetJob"
        case .reportOutcomes: "ReportOutcomes"
        }
    }
}
