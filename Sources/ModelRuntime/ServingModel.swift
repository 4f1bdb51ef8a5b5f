import DataCleaning
import DiamondSchema
import Synchronization
import TreeExplain
import TreeInference
import TreeModel

/// A model version ready to answer: the ensemble, its identity, and the index of the
/// diamonds it was trained on. Immutable, so calls that started on it finish on it even
/// after a newer version replaces it in the `ModelRegistry`.
public final class ServingModel: Sendable {
    /// The model's name in the store (e.g. "diamonds").
    public let name: String
    /// The version number within the name.
    public let version: Int
    public let ensemble: Ensemble
    /// The flat, SIMD form every call scores with (bit-identical to the reference predictor);
    /// nil only if lowering failed, in which case the reference predictor answers.
    public let compiled: CompiledEnsemble?
    /// Training diamonds for FindSimilar, when the training data is known.
    public let similar: SimilarityIndex?
    /// Validation applied to every diamond before it is priced.
    public let ranges: ValidationRanges
    /// The dataset version it was trained on ("" and 0 when unknown).
    public let datasetName: String
    public let datasetVersion: Int
    /// TreeSHAP tables, built by the first call that asks for reasons (they take time and
    /// memory: about 0.5 s and tens of MB for 1000 trees of 63 leaves).
    private let explainerCache = Mutex<Result<TreeExplainer, ExplainError>?>(nil)

    public init(name: String, version: Int, ensemble: Ensemble, trainingData: DiamondTable?,
                datasetName: String = "", datasetVersion: Int = 0, ranges: ValidationRanges = .standard) {
        self.name = name
        self.version = version
        self.datasetName = datasetName
        self.datasetVersion = datasetVersion
        self.ensemble = ensemble
        self.compiled = try? CompiledEnsemble(ensemble)
        self.similar = trainingData.map(SimilarityIndex.init(table:))
        self.ranges = ranges
    }

    /// Prices one diamond, or says what is wrong with it.
    public func predict(_ diamond: Diamond, level: Double) -> Result<PriceEstimate, RowProblem> {
        let violations = ranges.violations(in: diamond)
        if !violations.isEmpty { return .failure(RowProblem(index: 0, violations)) }
        let features = diamond.features
        let raw = compiled?.rawScore(features) ?? ensemble.rawScore(features)
        return .success(ensemble.estimate(raw: raw, features: features, level: level))
    }

    /// The model's explainer (built on first use).
    public func explainer() throws(ExplainError) -> TreeExplainer {
        let result = explainerCache.withLock { cache in
            if let cache { return cache }
            let built = Result { () throws(ExplainError) in try TreeExplainer(ensemble) }
            cache = built
            return built
        }
        return try result.get()
    }

    /// Prices a batch given as feature columns (`columns[f][row]`, grades as ordinal codes).
    /// Rows that fail validation are reported and left out; the others are scored.
    /// With `explain`, the valid rows' TreeSHAP contributions come too (row-major, on every core;
    /// nil if the model cannot be explained).
    public func predictBatch(columns: [[Double]], level: Double, explain: Bool = false) -> BatchPrediction {
        let rows = columns.first?.count ?? 0
        var valid: [Int] = []
        valid.reserveCapacity(rows)
        var problems: [RowProblem] = []
        let carat = columns[Feature.carat.rawValue], cut = columns[Feature.cut.rawValue]
        let color = columns[Feature.color.rawValue], clarity = columns[Feature.clarity.rawValue]
        let depth = columns[Feature.depth.rawValue], table = columns[Feature.table.rawValue]
        let x = columns[Feature.x.rawValue], y = columns[Feature.y.rawValue], z = columns[Feature.z.rawValue]
        for row in 0..<rows {
            // Most rows pass: checked in place, no diamond built. A row that fails is checked
            // again below to say why.
            if Self.grade(cut[row], Cut.self) != nil, Self.grade(color[row], Color.self) != nil,
                Self.grade(clarity[row], Clarity.self) != nil,
                ranges.accepts(carat: carat[row], depth: depth[row], table: table[row], x: x[row], y: y[row], z: z[row])
            {
                valid.append(row)
                continue
            }
            switch Self.diamond(columns, row) {
            case .success(let diamond):
                let found = ranges.violations(in: diamond)
                if found.isEmpty {
                    valid.append(row)
                } else {
                    problems.append(RowProblem(index: row, found))
                }
            case .failure(let problem):
                problems.append(problem)
            }
        }
        let scored = valid.count == rows ? columns : columns.map { column in valid.map { column[$0] } }
        let raw = compiled?.rawScores(columns: scored) ?? ensemble.rawScores(columns: scored)
        // A range is a lookup by the row's price bin and grades, not another model to run.
        let estimates = ensemble.estimates(raw: raw, columns: scored, level: level)
        var result = BatchPrediction(rows: valid, estimates: estimates, problems: problems)
        if explain { result.contributions = try? explainer().contributions(columns: scored) }
        return result
    }

    /// The grade whose ordinal code is `code`, or nil when it is not one.
    @inline(__always)
    static func grade<G: Grade>(_ code: Double, _: G.Type) -> G? {
        guard code >= 0, code <= 255, code == code.rounded() else { return nil }
        return G(rawValue: UInt8(code))
    }

    /// Checks a row's grade codes and builds its diamond.
    static func diamond(_ columns: [[Double]], _ row: Int) -> Result<Diamond, RowProblem> {
        func grade<G: Grade>(_ feature: Feature, _ type: G.Type) -> G? { Self.grade(columns[feature.rawValue][row], type) }
        func missing(_ feature: Feature, _ levels: String) -> RowProblem {
            RowProblem(index: row, field: feature.name,
                       reason: "\(feature.name) is missing or unknown (expected one of \(levels))")
        }
        guard let cut = grade(.cut, Cut.self) else { return .failure(missing(.cut, Cut.levelList)) }
        guard let color = grade(.color, Color.self) else { return .failure(missing(.color, Color.levelList)) }
        guard let clarity = grade(.clarity, Clarity.self) else { return .failure(missing(.clarity, Clarity.levelList)) }
        return .success(Diamond(
            carat: columns[0][row], cut: cut, color: color, clarity: clarity, depth: columns[4][row],
            table: columns[5][row], x: columns[6][row], y: columns[7][row], z: columns[8][row]))
    }
}

/// Why one row of a call was not priced.
public struct RowProblem: Error, Sendable, Equatable {
    /// The row's index in the call (0-based).
    public var index: Int
    /// The field at fault (the first, when several are); empty when the row as a whole is bad.
    public var field: String
    /// What is wrong, for a person ("carat must be > 0, got -1.0").
    public var reason: String

    public init(index: Int, field: String = "", reason: String) {
        self.index = index
        self.field = field
        self.reason = reason
    }

    /// A row with these violations.
    public init(index: Int, _ violations: [FieldViolation]) {
        self.init(index: index, field: violations.first?.field ?? "",
                  reason: violations.map(\.message).joined(separator: "; "))
    }
}

/// The answer to a batch: estimates for the valid rows, problems for the others.
public struct BatchPrediction: Sendable {
    /// Indices (in the call) of the rows that were priced, ascending.
    public var rows: [Int]
    /// One estimate per entry of `rows`.
    public var estimates: [PriceEstimate]
    /// One entry per rejected row, ascending by index.
    public var problems: [RowProblem]
    /// When asked for: TreeSHAP contributions of the priced rows, row-major (`rows.count` × features).
    public var contributions: [Double]?

    public init(rows: [Int], estimates: [PriceEstimate], problems: [RowProblem], contributions: [Double]? = nil) {
        self.rows = rows
        self.estimates = estimates
        self.problems = problems
        self.contributions = contributions
    }
}
