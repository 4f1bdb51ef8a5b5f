import LoupeProtocol
import LoupeUtilities
import NIOCore
import SwiftProtobuf

/// Realistic messages of every kind, for round trips and the seed corpus.
enum Samples {
    static var diamond: Loupe_V1_Diamond {
        var d = Loupe_V1_Diamond()
        d.carat = 1.01
        d.cut = .ideal
        d.color = .g
        d.clarity = .vs1
        d.depth = 61.8
        d.table = 56
        d.x = 6.43
        d.y = 6.47
        d.z = 3.99
        return d
    }

    static func columns(rows: Int) -> Loupe_V1_DiamondColumns {
        var c = Loupe_V1_DiamondColumns()
        for i in 0..<rows {
            let carat = 0.3 + Double(i % 40) * 0.05
            c.carat.append(carat)
            c.cut.append(Loupe_V1_Cut(rawValue: 1 + i % 5)!)
            c.color.append(Loupe_V1_Color(rawValue: 1 + i % 7)!)
            c.clarity.append(Loupe_V1_Clarity(rawValue: 1 + i % 8)!)
            c.depth.append(61 + Double(i % 5) * 0.2)
            c.table.append(55 + Double(i % 4))
            let side = 4 + carat * 2
            c.x.append(side)
            c.y.append(side + 0.03)
            c.z.append(side * 0.62)
        }
        return c
    }

    static var modelVersion: Loupe_V1_ModelVersion {
        var m = Loupe_V1_ModelVersion()
        m.name = "diamonds"
        m.version = 7
        m.aliases = ["production"]
        m.createdUnixMs = 1_764_000_000_000
        m.dataset = "diamonds"
        m.datasetVersion = 3
        m.metrics = .with {
            $0.rows = 2686
            $0.rmse = 502.9
            $0.mae = 246.4
            $0.mape = 5.71
            $0.r2 = 0.9844
            $0.level = 0.9
            $0.coverage = 0.901
            $0.medianWidth = 0.257
        }
        m.parameters = [
            .with { $0.name = "num_leaves"; $0.value = "63" },
            .with { $0.name = "learning_rate"; $0.value = "0.05" },
        ]
        m.treeCount = 982
        m.digest = "sha256:" + String(repeating: "ab", count: 32)
        return m
    }

    /// A request of `method`, and the row count its header carries.
    static func request(_ method: LoupeProtocol.Method) -> (message: any SwiftProtobuf.Message, rows: UInt32) {
        switch method {
        case .hello:
            return (Loupe_V1_Hello.with {
                $0.protocolVersion = 1
                $0.token = "lp_test_8f14e45fceea167a5a36dedd4bea2543"
                $0.clientName = "loupe-tests/1.0"
            }, 0)
        case .health:
            return (Loupe_V1_HealthRequest(), 0)
        case .predict:
            return (Loupe_V1_PredictRequest.with {
                $0.diamond = diamond
                $0.level = 0.9
            }, 0)
        case .batchPredict:
            return (Loupe_V1_BatchPredictRequest.with {
                $0.rows = columns(rows: 5)
                $0.model = .with { $0.name = "diamonds"; $0.alias = "staging" }
                $0.level = 0.8
            }, 5)
        case .findSimilar:
            return (Loupe_V1_FindSimilarRequest.with {
                $0.carat = 1.01
                $0.cut = .ideal
                $0.color = .g
                $0.clarity = .vs1
                $0.count = 3
            }, 0)
        case .listModels:
            return (Loupe_V1_ListModelsRequest.with { $0.name = "diamonds" }, 0)
        case .retrain:
            return (Loupe_V1_RetrainRequest.with {
                $0.modelName = "diamonds"
                $0.dataset = "diamonds"
                $0.rows = .with {
                    $0.diamonds = columns(rows: 2)
                    $0.prices = [1384, 7186]
                }
                $0.tune = .with { $0.maxTrials = 40; $0.maxSeconds = 600 }
                $0.promotionMargin = 0.01
            }, 2)
        case .getJob:
            return (Loupe_V1_GetJobRequest.with { $0.jobID = "job-17" }, 0)
        case .reportOutcomes:
            return (Loupe_V1_ReportOutcomesRequest.with {
                $0.outcomes = [.with {
                    $0.diamond = diamond
                    $0.soldPrice = 5210
                    $0.soldUnixMs = 1_764_000_000_000
                    $0.requestID = 42
                    $0.hasRequestID_p = true
                    $0.outcomeID = "sale-9"
                }]
            }, 0)
        }
    }

    /// A successful response of `method`, and the row count its header carries.
    static func response(_ method: LoupeProtocol.Method) -> (message: any SwiftProtobuf.Message, rows: UInt32) {
        switch method {
        case .hello:
            return (Loupe_V1_Welcome.with {
                $0.principal = "acme"
                $0.scopes = ["predict", "models:read"]
                $0.limits = .with {
                    $0.maxFrameSize = 8 * 1024 * 1024
                    $0.maxBatchRows = 100_000
                    $0.frameDeadlineMs = 30_000
                    $0.maxSimilar = 100
                    $0.maxInFlight = 64
                    $0.rowsPerSecond = 1_000_000
                }
                $0.serverVersion = "loupe 0.3.0"
                $0.protocolVersion = 1
            }, 0)
        case .health:
            return (Loupe_V1_HealthResponse.with {
                $0.live = true
                $0.ready = true
                $0.modelLoaded = true
                $0.storeReachable = true
                $0.modelName = "diamonds"
                $0.modelVersion = 7
                $0.serverVersion = "loupe 0.3.0"
                $0.uptimeMs = 86_400_000
            }, 0)
        case .predict:
            return (Loupe_V1_PredictResponse.with {
                $0.price = 7186
                $0.low = 6323
                $0.high = 8167
                $0.level = 0.9
                $0.modelName = "diamonds"
                $0.modelVersion = 7
            }, 0)
        case .batchPredict:
            return (Loupe_V1_BatchPredictResponse.with {
                $0.prices = [612, 1384, .nan, 7186, 15_010]
                $0.lows = [540, 1218, .nan, 6323, 13_200]
                $0.highs = [700, 1573, .nan, 8167, 17_020]
                $0.rowErrors = [.with { $0.row = 2; $0.field = "carat"; $0.reason = "carat must be > 0, got -1.0" }]
                $0.level = 0.8
                $0.modelName = "diamonds"
                $0.modelVersion = 8
            }, 5)
        case .findSimilar:
            return (Loupe_V1_FindSimilarResponse.with {
                $0.diamonds = (0..<3).map { i in
                    .with {
                        $0.diamond = diamond
                        $0.diamond.carat = 1.0 + Double(i) * 0.01
                        $0.price = 6900 + Double(i) * 150
                        $0.row = UInt64(40_000 + i)
                    }
                }
                $0.dataset = "diamonds"
                $0.datasetVersion = 3
            }, 0)
        case .listModels:
            return (Loupe_V1_ListModelsResponse.with { $0.models = [modelVersion] }, 0)
        case .retrain:
            return (Loupe_V1_RetrainResponse.with { $0.jobID = "job-17" }, 0)
        case .getJob:
            return (Loupe_V1_GetJobResponse.with {
                $0.job = .with {
                    $0.jobID = "job-17"
                    $0.stage = .succeeded
                    $0.percent = 100
                    $0.message = "registered diamonds v8; promoted"
                    $0.startedUnixMs = 1_764_000_000_000
                    $0.finishedUnixMs = 1_764_000_095_000
                    $0.result = .with {
                        $0.model = modelVersion
                        $0.promoted = true
                        $0.decision = "holdout RMSE 489.1 vs production 502.9: 2.7% better, margin 1%"
                    }
                }
            }, 0)
        case .reportOutcomes:
            return (Loupe_V1_ReportOutcomesResponse.with {
                $0.accepted = 1
                $0.matchedByRequest = 1
            }, 0)
        }
    }

    /// The bytes of a request frame of `method` with request id `id`.
    static func requestFrame(_ method: LoupeProtocol.Method, id: UInt32) throws -> ByteBuffer {
        let (message, rows) = request(method)
        return try ByteBuffer(frameWith: .request(method, requestID: id, rowCount: rows), message: message)
    }

    /// The bytes of a response frame of `method` answering request id `id`.
    static func responseFrame(_ method: LoupeProtocol.Method, id: UInt32) throws -> ByteBuffer {
        let (message, rows) = response(method)
        let header = FrameHeader.request(method, requestID: id).response(rowCount: rows)
        return try ByteBuffer(frameWith: header, message: message)
    }

    /// One frame of every kind: each method's request, response, and an error reply.
    static func everyFrame() throws -> [ByteBuffer] {
        var frames: [ByteBuffer] = []
        for (i, method) in LoupeProtocol.Method.allCases.enumerated() {
            let id = UInt32(i + 1)
            frames.append(try requestFrame(method, id: id))
            frames.append(try responseFrame(method, id: id))
            frames.append(
                ByteBuffer(
                    errorFrameFor: ProtocolError(code: .invalidArgument, message: "\(method): example error"),
                    replyingTo: .request(method, requestID: id)))
        }
        return frames
    }
}

extension ByteBuffer {
    /// `self` split into buffers of the given sizes (the last takes the rest).
    func chunked(_ sizes: some Sequence<Int>) -> [ByteBuffer] {
        var rest = self
        var chunks: [ByteBuffer] = []
        for size in sizes where rest.readableBytes > 0 {
            chunks.append(rest.readSlice(length: Swift.min(size, rest.readableBytes))!)
        }
        if rest.readableBytes > 0 { chunks.append(rest) }
        return chunks
    }

    /// Lower-case hex, no separators.
    var hexString: String {
        readableBytesView.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    /// The bytes of a hex string (spaces and newlines ignored).
    init(hex: String) {
        let digits = Array(hex.filter { !$0.isWhitespace })
        var bytes: [UInt8] = []
        var i = 0
        while i + 1 < digits.count {
            bytes.append(UInt8(String(digits[i...i + 1]), radix: 16)!)
            i += 2
        }
        self.init(bytes: bytes)
    }
}
