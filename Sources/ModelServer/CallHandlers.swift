import ArtifactStore
import Catalog
import DiamondSchema
import Foundation
import LoupeProtocol
import ModelRuntime
import NIOCore
import RequestLog
import TreeExplain
import TreeModel
import TreeTraining

/// The service layer: one function per method, from a decoded request to a response
/// message or a `ProtocolError`. Nothing here knows about channels or frames; the
/// connection handler decides where each call runs (cheap calls on the event loop,
/// heavy or blocking ones on the worker pool).
final class CallHandlers: Sendable {
    let configuration: ModelServerConfiguration
    let loader: ModelLoader
    /// Answers Retrain and GetJob, when this server runs retraining jobs.
    let jobs: (any RetrainJobs)?
    /// Answers ReportOutcomes, when the process records outcomes.
    let outcomes: (any OutcomeReports)?
    let metrics: ServerMetrics
    /// Sees every diamond priced (the drift trigger's recent inputs when the request log is off).
    let inputs: ScoredInputs?
    /// Where every finished call is recorded, when the log is on.
    let requestLog: RequestLog?
    /// Each version's calls, errors and latencies (the rollout guard's evidence).
    var liveStats: LiveCallStats { loader.liveStats }
    /// Scores production's calls again with the shadow version, when one is set.
    let shadow: ShadowScorer
    let started = Date()

    init(configuration: ModelServerConfiguration, loader: ModelLoader, jobs: (any RetrainJobs)?, metrics: ServerMetrics,
         inputs: ScoredInputs? = nil, requestLog: RequestLog? = nil, outcomes: (any OutcomeReports)? = nil) {
        self.outcomes = outcomes
        self.configuration = configuration
        self.loader = loader
        self.jobs = jobs
        self.metrics = metrics
        self.inputs = inputs
        self.requestLog = requestLog
        shadow = ShadowScorer(
            maxPendingRows: configuration.shadowMaxPendingRows, guestbook: requestLog?.guestbook, metrics: metrics,
            logger: loader.logger)
    }

    // MARK: Finishing a call

    /// A finished call: the reply to send, and what to record of it once the reply is on its way.
    struct FinishedCall {
        let frame: Frame
        fileprivate let record: CallRecord
    }

    /// The reply to send for a finished call: `frame`, or DEADLINE_EXCEEDED when the client's
    /// deadline passed while it ran. Counts the call in the metrics (so a client that has its
    /// reply finds it on /metrics), and keeps what to hand to the request log (`request`, the
    /// reply, `principal`, what it asked and was answered) for `record`: every call, socket or
    /// in process, passes here.
    func finish(
        _ frame: Frame, method: String, started: NIODeadline, deadline: UInt32 = 0, request: Frame?,
        principal: Principal, summary: CallSummary = CallSummary()
    ) -> FinishedCall {
        var frame = frame
        var summary = summary
        // The version the call went to, before a failure clears it from the summary.
        let version = summary.modelVersion
        let header = frame.header
        let elapsed = NIODeadline.now() - started
        var status = StatusCode.ok
        if header.flags.contains(.error), let error = try? frame.decode(Loupe_V1_Status.self) {
            status = StatusCode(wireValue: error.code.rawValue)
            summary.failed(error.message)
        }
        if deadline > 0, elapsed > .milliseconds(Int64(deadline)), status == .ok {
            status = .deadlineExceeded
            let failure = ProtocolError(
                code: .deadlineExceeded,
                message: "the call took \(elapsed.nanoseconds / 1_000_000) ms, past its deadline of \(deadline) ms")
            summary.failed(failure.message)
            frame = Frame(error: failure, replyingTo: header)
        }
        metrics.call(method, status: status, nanoseconds: elapsed.nanoseconds)
        if let version, method == "Predict" || method == "BatchPredict" {
            liveStats.record(version: version, status: status, nanoseconds: elapsed.nanoseconds)
        }
        return FinishedCall(frame: frame, record: CallRecord(
            at: Date(timeIntervalSinceNow: -Double(elapsed.nanoseconds) / 1e9), principal: principal.name,
            tokenID: principal.tokenID, method: method, request: request, response: frame, status: status,
            latencyNanoseconds: elapsed.nanoseconds, summary: summary))
    }

    /// Hands a finished call to the request log. A socket's reply is written first: the
    /// hand-off (with a wake-up of the log's appender now and then) need not delay it, and a
    /// kill -9 in between loses no more than the log's documented window.
    func record(_ call: FinishedCall) {
        requestLog?.record(call.record)
    }

    /// `finish` and `record` at once, for calls answered in process (no socket to write first).
    func finished(
        _ frame: Frame, method: String, started: NIODeadline, deadline: UInt32 = 0, request: Frame?,
        principal: Principal, summary: CallSummary = CallSummary()
    ) -> Frame {
        let call = finish(
            frame, method: method, started: started, deadline: deadline, request: request, principal: principal,
            summary: summary)
        record(call)
        return call.frame
    }

    // MARK: Health

    func health() -> Loupe_V1_HealthResponse {
        var response = Loupe_V1_HealthResponse()
        response.live = true
        let model = loader.registry.model
        response.modelLoaded = model != nil
        response.storeReachable = loader.storeReachable
        // A loaded model prices without the store: a store that cannot be read (S3 down) keeps
        // the server ready, serving what it has, as with a production version it cannot load.
        response.ready = response.modelLoaded
        response.modelName = model?.name ?? ""
        response.modelVersion = UInt32(model?.version ?? 0)
        response.serverVersion = configuration.serverVersion
        response.uptimeMs = UInt64(max(0, Date().timeIntervalSince(started) * 1000))
        if !response.modelLoaded {
            response.message = "no model loaded yet: train and promote one (`loupe train --promote`)"
                + (response.storeReachable ? "" : "; the artifact store cannot be read")
        } else if !response.storeReachable {
            response.message = "the artifact store cannot be read: serving v\(response.modelVersion) as loaded; "
                + "promotions and versions not loaded wait until it can"
        } else if let stale = loader.unloadableProduction {
            // Still ready (it prices with the version it has), but not what the alias says.
            response.message = "production names v\(stale.version), which cannot be loaded, so v\(response.modelVersion) "
                + "is served: \(stale.reason)"
        }
        return response
    }

    // MARK: Predict

    /// The model a selector names, or a clear error. A call that names no version (or the
    /// default model's production) from `principal` goes where the rollout routes it: the canary
    /// for the partners in its share, production for the others.
    func selectModel(_ selector: Loupe_V1_ModelSelector?, principal: String? = nil) throws(ProtocolError) -> ServingModel {
        let selector = selector ?? Loupe_V1_ModelSelector()
        if let principal, selector.version == 0,
            selector.name.isEmpty || selector.name == configuration.defaultModel,
            selector.alias.isEmpty || selector.alias == ModelAlias.production.rawValue,
            let model = loader.registry.model(for: principal), model.name == configuration.defaultModel
        {
            return model
        }
        var alias: ModelAlias?
        if !selector.alias.isEmpty {
            guard let named = ModelAlias(rawValue: selector.alias) else {
                throw ProtocolError(
                    code: .notFound,
                    message: "model alias \"\(selector.alias)\" is not known (the aliases are "
                        + ModelAlias.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            alias = named
        }
        do {
            let model = try loader.model(
                name: selector.name, version: selector.version == 0 ? nil : Int(selector.version), alias: alias)
            guard let model else {
                throw ProtocolError(
                    code: selector.name.isEmpty && selector.version == 0 ? .unavailable : .notFound,
                    message: selector.name.isEmpty && selector.version == 0
                        ? "no model is loaded yet; the server is not ready" : "no such model: \(describe(selector))")
            }
            return model
        } catch let error as ProtocolError {
            throw error
        } catch let error as StoreError where error.code == .notFound {
            throw ProtocolError(code: .notFound, message: "no such model: \(describe(selector))", cause: error)
        } catch {
            throw ProtocolError(code: .internalError, message: "loading \(describe(selector)) failed: \(error)", cause: error)
        }
    }

    /// Whether a call with this selector is served by the model already in memory.
    func usesCurrentModel(_ selector: Loupe_V1_ModelSelector?) -> Bool {
        guard let selector else { return true }
        let current = loader.registry.model
        if selector.version != 0 { return selector.version == current?.version ?? 0 && selector.name.isEmpty }
        return (selector.name.isEmpty || selector.name == current?.name)
            && (selector.alias.isEmpty || selector.alias == ModelAlias.production.rawValue)
    }

    func level(_ requested: Double) throws(ProtocolError) -> Double {
        if requested == 0 { return ConformalIntervals.defaultLevel }
        guard requested > 0, requested < 1 else {
            throw ProtocolError(
                code: .invalidArgument, message: "level must be in (0, 1), got \(requested)",
                fieldViolations: [violation("level", "must be in (0, 1), got \(requested)")])
        }
        return requested
    }

    func predict(_ request: Loupe_V1_PredictRequest, principal: String? = nil) throws(ProtocolError)
        -> Loupe_V1_PredictResponse
    {
        let level = try level(request.level)
        guard request.hasDiamond else {
            throw ProtocolError(
                code: .invalidArgument, message: "the request has no diamond",
                fieldViolations: [violation("diamond", "is required")])
        }
        let diamond: Diamond
        switch request.diamond.diamond() {
        case .success(let d): diamond = d
        case .failure(let grade):
            throw ProtocolError(
                code: .invalidArgument, message: grade.message,
                fieldViolations: [violation("diamond.\(grade.field)", "is missing or unknown (expected one of \(grade.levels))")])
        }
        let model = try selectModel(request.hasModel ? request.model : nil, principal: principal)
        switch model.predict(diamond, level: level) {
        case .failure(let problem):
            let violations = model.ranges.violations(in: diamond)
            throw ProtocolError(
                code: .invalidArgument, message: problem.reason,
                fieldViolations: violations.map { violation("diamond.\($0.field)", $0.message) })
        case .success(let estimate):
            metrics.rowsScored(1)
            inputs?.diamond(diamond)
            var response = Loupe_V1_PredictResponse()
            response.price = estimate.price
            response.low = estimate.low
            response.high = estimate.high
            response.level = estimate.level ?? 0
            response.modelName = model.name
            response.modelVersion = UInt32(model.version)
            if request.explain {
                let shap = try explainer(of: model)
                var explanation = Loupe_V1_Explanation()
                explanation.baseValue = shap.baseValue
                explanation.contributions = shap.contributions(diamond.features)
                response.explanation = explanation
            }
            return response
        }
    }

    /// Most rows an explained batch may have: its contributions (72 bytes a row) and prices
    /// must fit the default 8 MiB frame.
    static let maxExplainedRows = 50_000

    func explainer(of model: ServingModel) throws(ProtocolError) -> TreeExplainer {
        do { return try model.explainer() } catch {
            throw ProtocolError(code: .failedPrecondition, message: "model \(model.name) v\(model.version) cannot be explained: \(error.message)")
        }
    }

    func batchPredict(_ input: BatchPredictInput, declaredRows: UInt32, principal: String? = nil)
        throws(ProtocolError) -> Loupe_V1_BatchPredictResponse
    {
        let request = input.request
        let level = try level(request.level)
        guard let rows = input.rowCount else {
            throw ProtocolError(code: .invalidArgument, message: "the feature columns differ in length")
        }
        guard rows == Int(declaredRows) else {
            throw ProtocolError(
                code: .invalidArgument,
                message: "the frame header says \(declaredRows) rows but the columns hold \(rows)")
        }
        guard rows <= configuration.maxBatchRows else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "\(rows) rows exceed the limit of \(configuration.maxBatchRows) per call; split the batch")
        }
        guard !request.explain || rows <= Self.maxExplainedRows else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "\(rows) rows exceed the limit of \(Self.maxExplainedRows) per explained call; split the batch")
        }
        let model = try selectModel(request.hasModel ? request.model : nil, principal: principal)
        var shap: TreeExplainer?
        if request.explain { shap = try explainer(of: model) }
        let columns = input.columns
        let result = model.predictBatch(columns: columns, level: level, explain: request.explain)
        metrics.rowsScored(result.rows.count)
        inputs?.columns(columns)
        var response = Loupe_V1_BatchPredictResponse()
        response.level = level
        response.modelName = model.name
        response.modelVersion = UInt32(model.version)
        // Prices for every row, in order; a rejected row gets NaN and a RowError.
        (response.prices, response.lows, response.highs) = Self.priceColumns(result, rows: rows)
        response.rowErrors = result.problems.map { problem in
            var error = Loupe_V1_RowError()
            error.row = UInt32(problem.index)
            error.field = problem.field
            error.reason = problem.reason
            return error
        }
        if let shap, let contributions = result.contributions {
            // Row-major in request order; rows that were not priced get NaN.
            let n = shap.featureCount
            var explanation = Loupe_V1_BatchExplanation()
            explanation.baseValue = shap.baseValue
            explanation.featureCount = UInt32(n)
            var all = [Double](repeating: .nan, count: rows * n)
            for (i, row) in result.rows.enumerated() {
                for f in 0..<n { all[row * n + f] = contributions[i * n + f] }
            }
            explanation.contributions = all
            response.explanation = explanation
        }
        return response
    }

    /// Prices, lows and highs for every row of a call, in order: NaN for a rejected row.
    static func priceColumns(_ result: BatchPrediction, rows: Int) -> (prices: [Double], lows: [Double], highs: [Double]) {
        var prices = [Double](repeating: .nan, count: rows)
        var lows = prices
        var highs = prices
        prices.withUnsafeMutableBufferPointer { prices in
            lows.withUnsafeMutableBufferPointer { lows in
                highs.withUnsafeMutableBufferPointer { highs in
                    // Through buffers: indexed arrays with their checks cost ~0.6 ms a 100k-row call.
                    result.rows.withUnsafeBufferPointer { scored in
                        result.estimates.withUnsafeBufferPointer { estimates in
                            for i in 0..<min(scored.count, estimates.count) where scored[i] >= 0 && scored[i] < rows {
                                let row = scored[i], e = estimates[i]
                                prices[row] = e.price
                                lows[row] = e.low
                                highs[row] = e.high
                            }
                        }
                    }
                }
            }
        }
        return (prices, lows, highs)
    }

    /// Whether a shadow version scores production's calls now.
    var shadowRunning: Bool { loader.registry.rollout.shadow != nil }

    /// Hands a call production answered to the shadow, when one runs (a call a canary or an
    /// explicit selector answered is not shadowed: the shadow is compared with production).
    func shadow(_ input: @autoclosure () -> ShadowScorer.Job.Input, level: Double, prices: [Double],
                answeredBy version: UInt32, header: FrameHeader, principal: Principal) {
        let registry = loader.registry
        guard let shadowModel = registry.rollout.shadow, let production = registry.model,
            production.version == Int(version), shadowModel !== production
        else { return }
        shadow.submit(ShadowScorer.Job(
            model: shadowModel, input: input(), level: level > 0 ? level : ConformalIntervals.defaultLevel, at: Date(),
            principal: principal.name, tokenID: principal.tokenID, requestID: UInt64(header.requestID),
            productionPrices: prices))
    }

    // MARK: FindSimilar

    func findSimilar(_ request: Loupe_V1_FindSimilarRequest) throws(ProtocolError) -> Loupe_V1_FindSimilarResponse {
        let count = request.count == 0 ? 5 : Int(request.count)
        guard count <= configuration.maxSimilar else {
            throw ProtocolError(
                code: .resourceExhausted, message: "count \(count) exceeds the limit of \(configuration.maxSimilar)")
        }
        guard request.carat > 0, request.carat.isFinite else {
            throw ProtocolError(
                code: .invalidArgument, message: "carat must be > 0, got \(request.carat)",
                fieldViolations: [violation("carat", "must be > 0, got \(request.carat)")])
        }
        var probe = Loupe_V1_Diamond()
        probe.carat = request.carat
        probe.cut = request.cut
        probe.color = request.color
        probe.clarity = request.clarity
        probe.depth = 61.8
        probe.table = 57
        guard case .success(let query) = probe.diamond() else {
            if case .failure(let grade) = probe.diamond() {
                throw ProtocolError(code: .invalidArgument, message: grade.message,
                                    fieldViolations: [violation(grade.field, "is missing or unknown")])
            }
            throw ProtocolError(code: .invalidArgument, message: "bad grades")
        }
        guard request.dataset.isEmpty && request.datasetVersion == 0 else {
            throw ProtocolError(
                code: .unimplemented,
                message: "FindSimilar searches the production model's training data; naming another dataset is not supported")
        }
        let model = try selectModel(nil)
        guard let index = model.similar else {
            throw ProtocolError(code: .failedPrecondition, message: "the served model has no training data index")
        }
        var response = Loupe_V1_FindSimilarResponse()
        response.diamonds = index.nearest(to: query, limit: count).map { match in
            var similar = Loupe_V1_SimilarDiamond()
            similar.diamond = Loupe_V1_Diamond(match.diamond)
            similar.price = match.price
            similar.row = UInt64(match.row)
            return similar
        }
        response.dataset = model.datasetName
        response.datasetVersion = UInt32(model.datasetVersion)
        return response
    }

    // MARK: Models and jobs

    /// Retrain and GetJob go to the job runner the process gave this server.
    func retrain(_ request: Loupe_V1_RetrainRequest, declaredRows: UInt32, principal: Principal) throws(ProtocolError)
        -> Loupe_V1_RetrainResponse
    {
        try runner().retrain(request, declaredRows: declaredRows, requestedBy: principal.name)
    }

    func getJob(_ request: Loupe_V1_GetJobRequest) throws(ProtocolError) -> Loupe_V1_GetJobResponse {
        try runner().job(request)
    }

    /// ReportOutcomes goes to the outcome recorder the process gave this server.
    func reportOutcomes(_ request: Loupe_V1_ReportOutcomesRequest, principal: Principal) throws(ProtocolError)
        -> Loupe_V1_ReportOutcomesResponse
    {
        guard let outcomes else {
            throw ProtocolError(code: .unimplemented, message: "this model server records no outcomes (it has no request log)")
        }
        guard !request.outcomes.isEmpty else {
            throw ProtocolError(code: .invalidArgument, message: "the request has no outcomes")
        }
        guard request.outcomes.count <= configuration.maxBatchRows else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "\(request.outcomes.count) outcomes exceed the limit of \(configuration.maxBatchRows) per call; split them")
        }
        return try outcomes.report(request, principal: principal.name)
    }

    private func runner() throws(ProtocolError) -> any RetrainJobs {
        guard let jobs else {
            throw ProtocolError(code: .unimplemented, message: "this model server runs no retraining jobs")
        }
        return jobs
    }

    func listModels(_ request: Loupe_V1_ListModelsRequest) throws(ProtocolError) -> Loupe_V1_ListModelsResponse {
        do {
            let store = loader.catalog.store
            let names = request.name.isEmpty ? try store.modelNames() : [request.name]
            var response = Loupe_V1_ListModelsResponse()
            for name in names {
                let aliases = try store.aliases(name: name)
                for manifest in try store.models(name: name) {
                    response.models.append(Loupe_V1_ModelVersion(manifest, aliases: aliases))
                }
            }
            return response
        } catch let error as StoreError where error.code == .invalidName {
            throw ProtocolError(code: .invalidArgument, message: error.message, cause: error)
        } catch {
            throw ProtocolError(code: .internalError, message: "reading the store failed: \(error)", cause: error)
        }
    }

    private func describe(_ s: Loupe_V1_ModelSelector) -> String {
        let name = s.name.isEmpty ? configuration.defaultModel : s.name
        if s.version != 0 { return "\(name)@\(s.version)" }
        return "\(name)@\(s.alias.isEmpty ? "production" : s.alias)"
    }
}

func violation(_ field: String, _ description: String) -> Loupe_V1_FieldViolation {
    var v = Loupe_V1_FieldViolation()
    v.field = field
    v.description_p = description
    return v
}
