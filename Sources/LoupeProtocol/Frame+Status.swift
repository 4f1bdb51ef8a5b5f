import NIOCore

extension Frame {
    /// An error frame carrying `error` as a `Status`: the reply to the call with header
    /// `request`, or a connection-level error (method id 0, request id 0) when `request` is
    /// `nil`.
    public init(error: ProtocolError, replyingTo request: FrameHeader?) {
        let header = request?.errorResponse() ?? .connectionError
        do {
            try self.init(header: header, message: error.status)
        } catch {
            // Unreachable in practice (a Status has no required fields and is small); an empty
            // Status still reads as an error (code OK on an error frame means UNKNOWN).
            self.init(header: header, payload: ByteBuffer())
        }
    }
}

extension ByteBuffer {
    /// The bytes of the error frame `Frame(error:replyingTo:)`, ready to write.
    public init(errorFrameFor error: ProtocolError, replyingTo request: FrameHeader?) {
        let header = request?.errorResponse() ?? .connectionError
        do {
            try self.init(frameWith: header, message: error.status)
        } catch {
            self.init()
            self.writeFrame(Frame(header: header, payload: ByteBuffer()))
        }
    }
}
