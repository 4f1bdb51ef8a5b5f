/// What a caller may do: the scopes a token grants, sent in `Welcome.scopes` and checked per
/// method by the gateway (and again by the model server).
public enum Scope: String, Sendable, Hashable, CaseIterable {
    /// Predict, BatchPredict, FindSimilar, ReportOutcomes.
    case predict
    /// ListModels, GetJob.
    case modelsRead = "models:read"
    /// Retrain, and everything above.
    case admin

    /// Whether a caller holding `scopes` may call `method`.
    public static func allows(_ scopes: Set<Scope>, _ method: Method) -> Bool {
        if scopes.contains(.admin) { return true }
        switch method {
        case .hello, .health: return true
        case .predict, .batchPredict, .findSimilar, .reportOutcomes: return scopes.contains(.predict)
        case .listModels, .getJob: return scopes.contains(.modelsRead)
        case .retrain: return false
        }
    }

    /// The scope a method needs (`nil`: none, Hello and Health).
    public static func required(for method: Method) -> Scope? {
        switch method {
        case .hello, .health: nil
        case .predict, .batchPredict, .findSimilar, .reportOutcomes: .predict
        case .listModels, .getJob: .modelsRead
        case .retrain: .admin
        }
    }

    /// Parses scope names (`predict`, `models:read`, `admin`); unknown names are skipped.
    public static func parse(_ names: some Sequence<String>) -> Set<Scope> {
        Set(names.compactMap(Scope.init(rawValue:)))
    }
}
