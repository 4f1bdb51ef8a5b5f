import DiamondSchema

/// Where the server reports every diamond it priced (Predict one at a time, BatchPredict as
/// feature columns), for whoever watches the inputs: the retraining scheduler's drift window
/// when the request log is off. Called on the serving path: keep it cheap.
public struct ScoredInputs: Sendable {
    /// One diamond priced by Predict.
    public var diamond: @Sendable (Diamond) -> Void
    /// A batch priced by BatchPredict, as one column per feature.
    public var columns: @Sendable ([[Double]]) -> Void

    public init(diamond: @escaping @Sendable (Diamond) -> Void, columns: @escaping @Sendable ([[Double]]) -> Void) {
        self.diamond = diamond
        self.columns = columns
    }
}
