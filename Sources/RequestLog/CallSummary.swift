import LoupeProtocol

/// What the serving side already knows of a call, for its guestbook row: the request it
/// decoded and the answer it built. Handed over with the frames so the log never decodes them
/// again (re-decoding both payloads was ~30% of the appender's CPU per call).
public struct CallSummary: Sendable, Hashable {
    /// Rows priced: 1 for Predict, the declared batch size for BatchPredict, else 0.
    public var rows = 0
    /// The model that answered (nil for calls no model answered).
    public var modelName: String?
    public var modelVersion: Int?
    /// The error message sent, for a failed call.
    public var error: String?
    /// For Predict: the diamond asked about.
    public var diamond: LoggedDiamond?
    /// For Predict: the price and range given.
    public var price: Double?
    public var low: Double?
    public var high: Double?
    public var level: Double?

    public init() {}

    /// A Predict as asked (before it is answered).
    public init(asked request: Loupe_V1_PredictRequest) {
        if request.hasDiamond {
            diamond = LoggedDiamond(request.diamond)
            rows = 1
        }
    }

    /// A BatchPredict as asked: its declared row count.
    public init(batchOf rows: UInt32) {
        self.rows = Int(rows)
    }

    /// Adds a Predict's answer.
    public mutating func answered(_ response: Loupe_V1_PredictResponse) {
        price = response.price
        low = response.low
        high = response.high
        level = response.level
        answeredBy(name: response.modelName, version: response.modelVersion)
    }

    /// Adds the model that answered a BatchPredict.
    public mutating func answered(_ response: Loupe_V1_BatchPredictResponse) {
        answeredBy(name: response.modelName, version: response.modelVersion)
    }

    /// The call failed with `message`: nothing it computed was given (a Predict answered past
    /// its deadline gets DEADLINE_EXCEEDED, not the price).
    public mutating func failed(_ message: String) {
        error = message
        price = nil
        low = nil
        high = nil
        level = nil
        modelName = nil
        modelVersion = nil
    }

    private mutating func answeredBy(name: String, version: UInt32) {
        modelName = name.isEmpty ? nil : name
        modelVersion = version == 0 ? nil : Int(version)
    }
}
