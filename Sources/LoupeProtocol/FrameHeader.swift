/// The fixed 16-byte header that follows a frame's 4-byte length (all integers big-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | version (1) |
/// | 1 | 1 | flags (`FrameFlags`) |
/// | 2 | 2 | method id (`Method`) |
/// | 4 | 4 | request id, chosen by the client, echoed in the reply |
/// | 8 | 4 | row count: rows the payload carries (BatchPredict, Retrain rows), else 0 |
/// | 12 | 4 | deadline in ms from receipt (requests; 0 = none), 0 in responses |
///
/// A gateway routes, rate-limits and times calls from the header alone, without decoding the
/// payload.
public struct FrameHeader: Sendable, Hashable, CustomStringConvertible {
    /// Bytes of the encoded header.
    public static let size = 16
    /// Bytes of the length field before the header.
    public static let lengthFieldSize = 4
    /// The protocol version this library speaks and writes.
    public static let currentVersion: UInt8 = 1

    /// Protocol version; frames of other versions are rejected.
    public var version: UInt8
    /// Direction and kind of the frame.
    public var flags: FrameFlags
    /// The method's numeric id, as on the wire (see `method`).
    public var methodID: UInt16
    /// Chosen by the client per call and echoed in the reply, so calls can be pipelined.
    /// Connection-level error frames use 0, so clients should start at 1.
    public var requestID: UInt32
    /// Rows the payload carries: the rows of a BatchPredict request or response, or of a
    /// Retrain request's `rows`; 0 for every other frame. The server checks it against the
    /// payload, so a gateway may trust it for rate limiting.
    public var rowCount: UInt32
    /// For requests: how long the client will wait, in milliseconds from when the server reads
    /// the frame (0 = no deadline). Always 0 in responses.
    public var deadlineMilliseconds: UInt32

    /// Creates a header from raw field values.
    public init(
        version: UInt8 = FrameHeader.currentVersion,
        flags: FrameFlags,
        methodID: UInt16,
        requestID: UInt32,
        rowCount: UInt32 = 0,
        deadlineMilliseconds: UInt32 = 0
    ) {
        self.version = version
        self.flags = flags
        self.methodID = methodID
        self.requestID = requestID
        self.rowCount = rowCount
        self.deadlineMilliseconds = deadlineMilliseconds
    }

    /// The header of a request frame calling `method`.
    public static func request(
        _ method: Method, requestID: UInt32, rowCount: UInt32 = 0, deadlineMilliseconds: UInt32 = 0
    ) -> FrameHeader {
        FrameHeader(
            flags: .request, methodID: method.rawValue, requestID: requestID, rowCount: rowCount,
            deadlineMilliseconds: deadlineMilliseconds)
    }

    /// The method, or `nil` when the id is one this version does not know (or 0).
    public var method: Method? { Method(rawValue: methodID) }

    /// The header of a successful reply to this request: same method and request id.
    public func response(rowCount: UInt32 = 0) -> FrameHeader {
        FrameHeader(flags: .response, methodID: methodID, requestID: requestID, rowCount: rowCount)
    }

    /// The header of an error reply to this request: same method and request id, flags
    /// `response | error`.
    public func errorResponse() -> FrameHeader {
        FrameHeader(flags: [.response, .error], methodID: methodID, requestID: requestID)
    }

    /// The header of an error frame that answers no particular call (a framing error):
    /// method id 0, request id 0.
    public static let connectionError = FrameHeader(
        flags: [.response, .error], methodID: Method.noneID, requestID: 0)

    /// Checks what version 1 requires of a header: the version, no reserved flag bits, exactly
    /// one of request and response, and error only on a response.
    public func validate() throws(ProtocolError) {
        guard version == FrameHeader.currentVersion else {
            throw ProtocolError(
                code: .unimplemented,
                message: "protocol version \(version) is not supported; this peer speaks version "
                    + "\(FrameHeader.currentVersion) (the first header byte after the length)")
        }
        if !flags.intersection(.reserved).isEmpty {
            throw ProtocolError(
                code: .invalidArgument,
                message: "frame flags 0x\(hex(flags.rawValue)) set reserved bits 0x\(hex(flags.rawValue & 0xF0)); "
                    + "version 1 defines only request 0x01, response 0x02, error 0x04, compressed 0x08")
        }
        if flags.contains(.request) == flags.contains(.response) {
            throw ProtocolError(
                code: .invalidArgument,
                message: "frame flags 0x\(hex(flags.rawValue)) must set exactly one of request (0x01) and response (0x02)")
        }
        if flags.contains(.error) && !flags.contains(.response) {
            throw ProtocolError(
                code: .invalidArgument,
                message: "frame flags 0x\(hex(flags.rawValue)) set error (0x04) on a request; error marks replies only")
        }
    }

    /// `Predict#7 [request] rows 0`, or `method 99#7 ...` for an unknown method id.
    public var description: String {
        let name = method.map(\.description) ?? "method \(methodID)"
        var text = "\(name)#\(requestID) \(flags)"
        if rowCount != 0 { text += " rows \(rowCount)" }
        if deadlineMilliseconds != 0 { text += " deadline \(deadlineMilliseconds)ms" }
        if version != FrameHeader.currentVersion { text += " version \(version)" }
        return text
    }
}

func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16)
    return digits.count == 1 ? "0" + digits : digits
}
