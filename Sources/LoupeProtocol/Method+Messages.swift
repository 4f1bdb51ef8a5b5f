import SwiftProtobuf

extension Method {
    /// The message type of this method's request payload.
    public var requestType: any SwiftProtobuf.Message.Type {
        switch self {
        case .reportOutcomes: Loupe_V1_ReportOutcomesRequest.self
        case .hello: Loupe_V1_Hello.self
        case .health: Loupe_V1_HealthRequest.self
        case .predict: Loupe_V1_PredictRequest.self
        case .batchPredict: Loupe_V1_BatchPredictRequest.self
        case .findSimilar: Loupe_V1_FindSimilarRequest.self
        case .listModels: Loupe_V1_ListModelsRequest.self
        case .retrain: Loupe_V1_RetrainRequest.self
        case .getJob: Loupe_V1_GetJobRequest.self
        }
    }

    /// The message type of this method's successful response payload (an error response
    /// carries a `Loupe_V1_Status` instead).
    public var responseType: any SwiftProtobuf.Message.Type {
        switch self {
        case .reportOutcomes: Loupe_V1_ReportOutcomesResponse.self
        case .hello: Loupe_V1_Welcome.self
        case .health: Loupe_V1_HealthResponse.self
        case .predict: Loupe_V1_PredictResponse.self
        case .batchPredict: Loupe_V1_BatchPredictResponse.self
        case .findSimilar: Loupe_V1_FindSimilarResponse.self
        case .listModels: Loupe_V1_ListModelsResponse.self
        case .retrain: Loupe_V1_RetrainResponse.self
        case .getJob: Loupe_V1_GetJobResponse.self
        }
    }
}
