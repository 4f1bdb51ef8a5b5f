import NIOCore

/// The frame decoder's state machine, without a channel: feed it the bytes received so far and
/// it returns whole frames, or throws the first framing error. `FrameDecoder` wraps it; the
/// fuzz target and the tests drive it directly.
///
/// It checks the declared length against `maximumFrameSize` as soon as the 4 length bytes are
/// in, and the header as soon as its 16 bytes are in — before any payload is buffered.
package struct FrameParser: Sendable {
    /// Where the parser is inside the current frame.
    package enum State: Sendable, Hashable {
        /// Between frames, or the length field has not fully arrived.
        case waitingForLength
        /// The length (header + payload bytes) is known; the header has not fully arrived.
        case waitingForHeader(length: Int)
        /// The header is known; the payload has not fully arrived.
        case waitingForPayload(header: FrameHeader, payloadLength: Int)
    }

    /// The state; `.waitingForLength` between frames.
    package private(set) var state: State = .waitingForLength
    /// Largest accepted value of the length field. Changing it affects lengths read after the
    /// change, not a frame whose length was already accepted.
    package var maximumFrameSize: Int
    /// A phrase for error messages saying which limit is in force, e.g. "before the handshake".
    package var limitContext: String

    /// A parser that accepts frames up to `maximumFrameSize` bytes.
    package init(maximumFrameSize: Int, limitContext: String = "") {
        self.maximumFrameSize = maximumFrameSize
        self.limitContext = limitContext
    }

    /// Reads the next whole frame from `buffer`, or returns `nil` when more bytes are needed
    /// (consuming what it can: the length and header are read as soon as they are complete).
    package mutating func next(from buffer: inout ByteBuffer) throws(ProtocolError) -> Frame? {
        while true {
            switch state {
            case .waitingForLength:
                guard let length = buffer.readInteger(endianness: .big, as: UInt32.self) else { return nil }
                state = .waitingForHeader(length: try checkedLength(Int(length)))

            case .waitingForHeader(let length):
                if let version = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                    version != FrameHeader.currentVersion
                {
                    // The layout of other versions is unknown: reject before reading further.
                    try FrameHeader(version: version, flags: .request, methodID: 0, requestID: 0).validate()
                }
                guard let header = buffer.readFrameHeader() else { return nil }
                try header.validate()
                state = .waitingForPayload(header: header, payloadLength: length - FrameHeader.size)

            case .waitingForPayload(let header, let payloadLength):
                guard let payload = buffer.readSlice(length: payloadLength) else { return nil }
                state = .waitingForLength
                return Frame(header: header, payload: payload)
            }
        }
    }

    /// Whether part of a frame has been received: a partial frame is in `buffered` or the
    /// parser is past the start of one.
    package func isInsideFrame(buffered: ByteBuffer) -> Bool {
        state != .waitingForLength || buffered.readableBytes > 0
    }

    /// "12 bytes of a 1044-byte frame" for messages about a frame that did not complete,
    /// counting the length field; `buffered` holds the bytes not yet consumed.
    package func progress(buffered: ByteBuffer) -> String {
        let waiting = buffered.readableBytes
        switch state {
        case .waitingForLength:
            return "\(waiting) of the 4 length bytes of a frame"
        case .waitingForHeader(let length):
            return "\(FrameHeader.lengthFieldSize + waiting) bytes of a "
                + "\(FrameHeader.lengthFieldSize + length)-byte frame"
        case .waitingForPayload(let header, let payloadLength):
            let total = FrameHeader.lengthFieldSize + FrameHeader.size + payloadLength
            return "\(FrameHeader.lengthFieldSize + FrameHeader.size + waiting) bytes of a \(total)-byte "
                + "frame (\(header))"
        }
    }

    private func checkedLength(_ length: Int) throws(ProtocolError) -> Int {
        if length < FrameHeader.size {
            throw ProtocolError(
                code: .invalidArgument,
                message: "frame length \(length) is smaller than the \(FrameHeader.size)-byte header; the "
                    + "4-byte big-endian length counts the header and the payload")
        }
        if length > maximumFrameSize {
            let context = limitContext.isEmpty ? "" : " " + limitContext
            throw ProtocolError(
                code: .resourceExhausted,
                message: "frame length \(length) bytes exceeds the maximum of \(maximumFrameSize) bytes"
                    + "\(context); send smaller frames (split a batch into several calls)")
        }
        return length
    }
}
