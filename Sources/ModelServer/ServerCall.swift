import LoupeProtocol
import RequestLog
import NIOCore

/// One decoded call, ready to run: the request message with what it needs to be answered.
enum ServerCall: Sendable {
    case health
    case predict(Loupe_V1_PredictRequest)
    case batchPredict(BatchPredictInput, rows: UInt32)
    case findSimilar(Loupe_V1_FindSimilarRequest)
    case listModels(Loupe_V1_ListModelsRequest)
    case retrain(Loupe_V1_RetrainRequest, rows: UInt32)
    case getJob(Loupe_V1_GetJobRequest)
    case reportOutcomes(Loupe_V1_ReportOutcomesRequest)

    /// Decodes the payload of a request frame for `method` (not Hello, which the connection handles).
    init(method: Method, frame: Frame) throws(ProtocolError) {
        switch method {
        case .health: self = .health
        case .predict: self = .predict(try frame.decode())
        case .batchPredict: self = .batchPredict(try frame.decodeBatchPredict(), rows: frame.header.rowCount)
        case .findSimilar: self = .findSimilar(try frame.decode())
        case .listModels: self = .listModels(try frame.decode())
        case .retrain: self = .retrain(try frame.decode(), rows: frame.header.rowCount)
        case .getJob: self = .getJob(try frame.decode())
        case .reportOutcomes: self = .reportOutcomes(try frame.decode())
        case .hello:
            throw ProtocolError(code: .failedPrecondition, message: "the handshake is already done on this connection")
        }
    }

    /// Whether the call is cheap and non-blocking enough to answer on the event loop
    /// (hopping to a worker thread and back costs more than these take).
    func runsInline(handlers: CallHandlers) -> Bool {
        switch self {
        case .health, .getJob, .findSimilar: true
        case .predict(let request): handlers.usesCurrentModel(request.hasModel ? request.model : nil)
        case .batchPredict(let input, let rows):
            rows <= handlers.configuration.inlineBatchRows
                && handlers.usesCurrentModel(input.request.hasModel ? input.request.model : nil)
        case .listModels, .retrain, .reportOutcomes: false
        }
    }

    /// Runs the call and encodes the reply frame (a response, or an error with the status),
    /// with what the request log's row needs from the request and the answer.
    func reply(to header: FrameHeader, principal: Principal, handlers: CallHandlers) -> (frame: Frame, summary: CallSummary) {
        var summary = CallSummary()
        do throws(ProtocolError) {
            switch self {
            case .health:
                return (try Frame(header: header.response(), message: handlers.health()), summary)
            case .predict(let request):
                summary = CallSummary(asked: request)
                let response = try handlers.predict(request, principal: principal.name)
                summary.answered(response)
                // Decoded again only while a shadow runs: no cost on the answering path otherwise.
                if handlers.shadowRunning, case .success(let diamond) = request.diamond.diamond() {
                    handlers.shadow(
                        .diamond(diamond, logged: summary.diamond), level: response.level, prices: [response.price],
                        answeredBy: response.modelVersion, header: header, principal: principal)
                }
                return (try Frame(header: header.response(), message: response), summary)
            case .batchPredict(let input, let rows):
                summary = CallSummary(batchOf: rows)
                let response = try handlers.batchPredict(input, declaredRows: rows, principal: principal.name)
                summary.answered(response)
                handlers.shadow(
                    .columns(input.columns), level: response.level, prices: response.prices,
                    answeredBy: response.modelVersion, header: header, principal: principal)
                return (try Frame(header: header.response(rowCount: UInt32(response.prices.count)), message: response), summary)
            case .findSimilar(let request):
                return (try Frame(header: header.response(), message: handlers.findSimilar(request)), summary)
            case .listModels(let request):
                return (try Frame(header: header.response(), message: handlers.listModels(request)), summary)
            case .retrain(let request, let rows):
                summary = CallSummary(batchOf: rows)
                let response = try handlers.retrain(request, declaredRows: rows, principal: principal)
                return (try Frame(header: header.response(), message: response), summary)
            case .getJob(let request):
                return (try Frame(header: header.response(), message: handlers.getJob(request)), summary)
            case .reportOutcomes(let request):
                summary.rows = request.outcomes.count
                let response = try handlers.reportOutcomes(request, principal: principal)
                return (try Frame(header: header.response(), message: response), summary)
            }
        } catch {
            return (Frame(error: error, replyingTo: header), summary)
        }
    }
}
