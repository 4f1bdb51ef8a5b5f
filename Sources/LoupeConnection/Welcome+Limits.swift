import LoupeProtocol
import NIOCore

extension Loupe_V1_Welcome {
    /// The answer to an accepted Hello, in the protocol version this build speaks.
    public init(principal: String, scopes: [String], serverVersion: String, limits: Loupe_V1_Limits) {
        self.init()
        self.principal = principal
        self.scopes = scopes.sorted()
        self.serverVersion = serverVersion
        protocolVersion = UInt32(FrameHeader.currentVersion)
        self.limits = limits
    }
}

extension Loupe_V1_Limits {
    /// The limits every listener reports after the handshake (a gateway adds its token's rates).
    public init(maxFrameSize: Int, frameDeadline: TimeAmount, maxBatchRows: Int, maxInFlight: Int, maxSimilar: Int) {
        self.init()
        self.maxFrameSize = UInt32(clamping: maxFrameSize)
        frameDeadlineMs = UInt32(clamping: frameDeadline.nanoseconds / 1_000_000)
        self.maxBatchRows = UInt32(clamping: maxBatchRows)
        self.maxInFlight = UInt32(clamping: maxInFlight)
        self.maxSimilar = UInt32(clamping: maxSimilar)
    }
}
