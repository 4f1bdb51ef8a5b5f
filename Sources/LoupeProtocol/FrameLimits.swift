import NIOCore

/// The limits a `FrameDecoder` enforces on incoming frames. Two sets: a strict one until the
/// handshake completes, a larger one after (`FrameDecoder.handshakeCompleted()`).
///
/// Sizes are values of the length field, i.e. header plus payload, excluding the 4 length
/// bytes themselves.
public struct FrameLimits: Sendable, Hashable {
    /// Largest frame accepted before the handshake completes. Default 8 KiB: room for a
    /// `Hello` with a long token, nothing more, so an unauthenticated peer cannot make the
    /// server buffer much.
    public var maxFrameSizeBeforeHandshake: Int
    /// Largest frame accepted after the handshake. Default 8 MiB: a BatchPredict of 100,000
    /// rows (about 5.1 MB as packed doubles) fits with room to spare.
    public var maxFrameSize: Int
    /// How long a frame may take to arrive whole, from its first byte, before the handshake
    /// completes. Default 5 s.
    public var frameDeadlineBeforeHandshake: TimeAmount
    /// How long a frame may take to arrive whole, from its first byte, after the handshake.
    /// Default 30 s: an 8 MiB frame at 3 Mbit/s. A peer that trickles bytes is cut off by this,
    /// which an idle timeout alone would not do.
    public var frameDeadline: TimeAmount

    /// Creates limits; every argument has the documented default.
    public init(
        maxFrameSizeBeforeHandshake: Int = 8 * 1024,
        maxFrameSize: Int = 8 * 1024 * 1024,
        frameDeadlineBeforeHandshake: TimeAmount = .seconds(5),
        frameDeadline: TimeAmount = .seconds(30)
    ) {
        self.maxFrameSizeBeforeHandshake = maxFrameSizeBeforeHandshake
        self.maxFrameSize = maxFrameSize
        self.frameDeadlineBeforeHandshake = frameDeadlineBeforeHandshake
        self.frameDeadline = frameDeadline
    }

    /// The defaults.
    public static let standard = FrameLimits()
}
