import NIOCore

/// Writes `Frame`s as bytes (length, header, payload), for pipelines that pass `Frame`
/// values: `MessageToByteHandler(FrameEncoder())`. It copies the payload once into the
/// outbound buffer; where that copy matters, write the `ByteBuffer` that
/// `ByteBuffer(frameWith:message:)` builds instead, which serializes straight into place.
public struct FrameEncoder: MessageToByteEncoder, Sendable {
    /// Frames come down the pipeline.
    public typealias OutboundIn = Frame

    /// Creates an encoder.
    public init() {}

    /// Appends `data`'s bytes to `out`.
    public func encode(data: Frame, out: inout ByteBuffer) throws {
        guard data.payload.readableBytes <= Frame.maximumPayloadSize else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "a \(data.payload.readableBytes)-byte payload does not fit a frame's 32-bit length")
        }
        out.writeFrame(data)
    }
}
