import NIOCore
import SwiftProtobuf

extension Frame {
    /// A frame whose payload is `message`, serialized once.
    public init(header: FrameHeader, message: some SwiftProtobuf.Message) throws(ProtocolError) {
        let bytes = try Frame.serialize(message, for: header)
        self.init(header: header, payload: bytes.payload)
    }

    /// The payload decoded as `type`.
    ///
    /// - Throws: on an error frame (unless `type` is `Loupe_V1_Status`), the `ProtocolError` it
    ///   carries; on a compressed payload, `unimplemented`; when the payload is not a valid
    ///   `type`, `invalidArgument` with the reason.
    public func decode<M: SwiftProtobuf.Message>(
        _ type: M.Type = M.self, options: BinaryDecodingOptions = BinaryDecodingOptions()
    ) throws(ProtocolError) -> M {
        if header.flags.contains(.error) && type != Loupe_V1_Status.self {
            throw ProtocolError(status: try decodeRaw(Loupe_V1_Status.self, options: options))
        }
        return try decodeRaw(type, options: options)
    }

    /// The payload decoded as the message a frame with this header should carry: the method's
    /// request or response type, or `Loupe_V1_Status` on an error frame.
    ///
    /// - Throws: `unimplemented` for an unknown method id or a compressed payload;
    ///   `invalidArgument` when the payload is not a valid message of that type.
    public func decodeExpectedMessage(
        options: BinaryDecodingOptions = BinaryDecodingOptions()
    ) throws(ProtocolError) -> any SwiftProtobuf.Message {
        let type: any SwiftProtobuf.Message.Type
        if header.flags.contains(.error) {
            type = Loupe_V1_Status.self
        } else if let method = header.method {
            type = header.flags.contains(.request) ? method.requestType : method.responseType
        } else {
            throw ProtocolError(
                code: .unimplemented,
                message: "method id \(header.methodID) is not known to this peer (known: "
                    + Method.allCases.map { "\($0.rawValue) \($0)" }.joined(separator: ", ") + ")")
        }
        return try decodeRaw(type, options: options)
    }

    private func decodeRaw<M: SwiftProtobuf.Message>(
        _ type: M.Type, options: BinaryDecodingOptions
    ) throws(ProtocolError) -> M {
        try checkUncompressed()
        do {
            return try M(serializedBytes: FrameBytes(payload: payload), options: options)
        } catch {
            throw invalidPayload(M.protoMessageName, error)
        }
    }

    private func decodeRaw(
        _ type: any SwiftProtobuf.Message.Type, options: BinaryDecodingOptions
    ) throws(ProtocolError) -> any SwiftProtobuf.Message {
        try checkUncompressed()
        do {
            return try type.init(serializedBytes: FrameBytes(payload: payload), options: options)
        } catch {
            throw invalidPayload(type.protoMessageName, error)
        }
    }

    private func checkUncompressed() throws(ProtocolError) {
        if header.flags.contains(.compressed) {
            throw ProtocolError(
                code: .unimplemented,
                message: "frame \(header) has a compressed payload; version 1 defines no compression, "
                    + "send it uncompressed (flag 0x08 clear)")
        }
    }

    private func invalidPayload(_ typeName: String, _ error: any Error) -> ProtocolError {
        ProtocolError(
            code: .invalidArgument,
            message: "the \(payload.readableBytes)-byte payload of frame \(header) is not a valid "
                + "\(typeName): \(error)",
            cause: error)
    }

    static func serialize(_ message: some SwiftProtobuf.Message, for header: FrameHeader) throws(ProtocolError)
        -> FrameBytes
    {
        let bytes: FrameBytes
        do {
            bytes = try message.serializedBytes()
        } catch {
            throw ProtocolError(
                code: .internalError,
                message: "could not serialize the \(type(of: message).protoMessageName) for frame \(header): \(error)",
                cause: error)
        }
        guard bytes.count <= Frame.maximumPayloadSize else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "the \(type(of: message).protoMessageName) for frame \(header) is \(bytes.count) bytes, "
                    + "more than a frame can carry (\(Frame.maximumPayloadSize))")
        }
        return bytes
    }
}

extension ByteBuffer {
    /// The bytes of a whole frame carrying `message` — length, header, payload — serialized
    /// once, with no copy: write it to a channel as it is.
    public init(frameWith header: FrameHeader, message: some SwiftProtobuf.Message) throws(ProtocolError) {
        self = try Frame.serialize(message, for: header).frame(header: header)
    }
}
