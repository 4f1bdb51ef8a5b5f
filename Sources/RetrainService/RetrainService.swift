import ArtifactStore
import Catalog
import DiamondSchema
import Foundation
import HyperTuning
import Logging
import LoupeProtocol
import ModelServer
import Retraining
import Synchronization

/// The Retrain and GetJob calls over the retraining pipeline: a request's fields checked and
/// turned into a `RetrainRequest` for the job runner, a job's status turned into the reply.
/// The process hands it to the model server (`ModelServer(jobs:)`) and its `jobs` to the
/// scheduler, so both start jobs on one runner.
public final class RetrainService: RetrainJobs {
    public let catalog: Catalog
    /// The model a request without `model_name` retrains.
    public let defaultModel: String
    /// The job runner (one job at a time; the scheduler starts its jobs here too).
    public let jobs: JobManager
    private let listeners: Listeners

    public init(catalog: Catalog, defaultModel: String = Catalog.defaultModel, logger: Logger = Logger(label: "loupe.jobs")) {
        self.catalog = catalog
        self.defaultModel = defaultModel
        let listeners = Listeners()
        self.listeners = listeners
        jobs = JobManager(
            pipeline: RetrainPipeline(catalog: catalog) { manifest, _ in listeners.promoted(manifest) }, logger: logger)
    }

    /// Runs `body` whenever a job promotes a version (e.g. the server swaps it in at once
    /// rather than at its next poll of the alias), in the job's thread.
    public func whenPromoted(_ body: @escaping @Sendable (ModelManifest) -> Void) {
        listeners.add(body)
    }

    private final class Listeners: Sendable {
        private let bodies = Mutex<[@Sendable (ModelManifest) -> Void]>([])
        func add(_ body: @escaping @Sendable (ModelManifest) -> Void) { bodies.withLock { $0.append(body) } }
        func promoted(_ manifest: ModelManifest) { for body in bodies.withLock({ $0 }) { body(manifest) } }
    }

    public func retrain(_ request: Loupe_V1_RetrainRequest, declaredRows: UInt32, requestedBy: String)
        throws(ProtocolError) -> Loupe_V1_RetrainResponse
    {
        // The gateway charges a call's rate and quota by the header's row count without decoding
        // the payload, so the count must be the rows sent (as for BatchPredict).
        let sent = request.hasRows ? request.rows.prices.count : 0
        guard sent == Int(declaredRows) else {
            throw ProtocolError(
                code: .invalidArgument,
                message: "the frame header says \(declaredRows) rows but the request carries \(sent)")
        }
        var job = RetrainRequest(
            model: request.modelName.isEmpty ? defaultModel : request.modelName,
            dataset: request.dataset.isEmpty ? Catalog.defaultDataset : request.dataset,
            requestedBy: requestedBy)
        if request.promotionMargin != 0 {
            guard request.promotionMargin > 0, request.promotionMargin < 1 else {
                throw ProtocolError(
                    code: .invalidArgument, message: "promotion_margin must be in [0, 1), got \(request.promotionMargin)")
            }
            job.promotionMargin = request.promotionMargin
        }
        if request.datasetVersion != 0 {
            let newest = (try? catalog.store.latestDataset(name: job.dataset))?.version
            guard Int(request.datasetVersion) == newest else {
                throw ProtocolError(
                    code: .invalidArgument,
                    message: "retraining uses the newest version of dataset \(job.dataset) (\(newest.map(String.init) ?? "none")); "
                        + "dataset_version \(request.datasetVersion) cannot be chosen")
            }
        }
        if request.hasRows {
            job.newRowsCSV = try Self.csv(request.rows)
        }
        for name in request.accept {
            guard let guardrail = Guardrail(rawValue: name) else {
                throw ProtocolError(
                    code: .invalidArgument,
                    message: "accept names no guardrail: \"\(name)\" (one of "
                        + Guardrail.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            job.accept.insert(guardrail)
        }
        switch request.parameters {
        case .tune(let budget):
            guard budget.maxTrials > 0 || budget.maxSeconds > 0 else {
                throw ProtocolError(code: .invalidArgument, message: "a tuning budget needs max_trials or max_seconds")
            }
            var tuning = TuningConfiguration()
            tuning.maxTrials = budget.maxTrials > 0 ? Int(budget.maxTrials) : 100_000
            tuning.timeBudgetSeconds = budget.maxSeconds > 0 ? Double(budget.maxSeconds) : nil
            job.tuning = tuning
        case .reuse(let reuse):
            if reuse.version != 0 {
                do {
                    let manifest = try catalog.store.model(name: job.model, version: Int(reuse.version))
                    job.configuration = RetrainPipeline.configuration(from: manifest)
                } catch {
                    throw ProtocolError(code: .notFound, message: "no model \(job.model) version \(reuse.version) to reuse")
                }
            }
        case nil:
            break
        }
        var response = Loupe_V1_RetrainResponse()
        response.jobID = jobs.start(job)
        return response
    }

    public func job(_ request: Loupe_V1_GetJobRequest) throws(ProtocolError) -> Loupe_V1_GetJobResponse {
        guard let status = jobs.status(request.jobID) else {
            throw ProtocolError(code: .notFound, message: "no job \"\(request.jobID)\" on this server's store")
        }
        var job = Loupe_V1_Job()
        job.jobID = status.id
        job.stage = Self.stage(status.stage)
        job.percent = status.percent
        job.etaMs = UInt64(max(0, (status.etaSeconds ?? 0) * 1000))
        job.message = status.message
        job.startedUnixMs = Int64(status.started.timeIntervalSince1970 * 1000)
        job.finishedUnixMs = Int64((status.finished?.timeIntervalSince1970 ?? 0) * 1000)
        if status.isFinished {
            var result = Loupe_V1_JobResult()
            if let outcome = status.outcome {
                result.promoted = outcome.promoted
                result.decision = outcome.reason
                let store = catalog.store
                if let version = outcome.challengerVersion, let manifest = try? store.model(name: outcome.modelName, version: version),
                    let aliases = try? store.aliases(name: outcome.modelName)
                {
                    result.model = Loupe_V1_ModelVersion(manifest, aliases: aliases)
                }
            }
            if let error = status.error {
                result.error = ProtocolError(code: .internalError, message: error).status
            }
            job.result = result
        }
        var response = Loupe_V1_GetJobResponse()
        response.job = job
        return response
    }

    static func stage(_ stage: JobStage) -> Loupe_V1_JobStage {
        switch stage {
        case .queued: .queued
        case .preparingData: .cleaning
        case .tuning: .tuning
        case .training: .training
        case .evaluating: .evaluating
        case .registering: .registering
        case .swapping: .promoting
        case .done: .succeeded
        case .failed: .failed
        }
    }

    /// Labelled rows as CSV for the cleaning pipeline (so they pass the same rules as a file).
    static func csv(_ rows: Loupe_V1_LabelledRows) throws(ProtocolError) -> [UInt8] {
        guard let count = rows.diamonds.rowCount, count == rows.prices.count else {
            throw ProtocolError(code: .invalidArgument, message: "the extra rows' columns and prices differ in length")
        }
        let columns = rows.diamonds.featureColumns()
        var text = "carat,cut,color,clarity,depth,table,price,x,y,z\n"
        func grade<G: Grade>(_ v: Double, _: G.Type) -> String {
            v.isNaN ? "" : G(rawValue: UInt8(v)).map(\.label) ?? ""
        }
        for r in 0..<count {
            text += "\(columns[0][r]),\(grade(columns[1][r], Cut.self)),\(grade(columns[2][r], Color.self)),"
                + "\(grade(columns[3][r], Clarity.self)),\(columns[4][r]),\(columns[5][r]),\(rows.prices[r]),"
                + "\(columns[6][r]),\(columns[7][r]),\(columns[8][r])\n"
        }
        return Array(text.utf8)
    }
}
