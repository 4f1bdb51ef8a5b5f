/// The outcome of a call: the gRPC status code set, with gRPC's numbers (`loupe.v1.StatusCode`).
///
/// An error frame carries one in its `Status`; docs/PROTOCOL.md says when each is used.
public enum StatusCode: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Success; never carried by an error frame.
    case ok = 0
    /// The caller gave up on the call (or closed the connection in the middle of a frame).
    case cancelled = 1
    /// An error that fits no other code; also what an unrecognised code number maps to.
    case unknown = 2
    /// The request is malformed or a value is out of its range: fix the request, do not retry.
    case invalidArgument = 3
    /// The call's deadline (or a frame's arrival deadline) passed before it finished.
    case deadlineExceeded = 4
    /// A named thing (model, version, alias, dataset, job) does not exist.
    case notFound = 5
    /// The thing a call would create exists already.
    case alreadyExists = 6
    /// The principal is known but its scopes do not allow this method.
    case permissionDenied = 7
    /// A limit was hit: frame size, rows per call, rate, calls in flight.
    case resourceExhausted = 8
    /// The system is not in a state that allows the call (e.g. no model at "production").
    case failedPrecondition = 9
    /// The call lost a race (e.g. a concurrent promotion); retrying at a higher level may work.
    case aborted = 10
    /// A value is past the end of a valid range (e.g. a version that does not exist yet).
    case outOfRange = 11
    /// The method, flag or protocol version is not supported by this peer.
    case unimplemented = 12
    /// A bug or broken invariant on the server; the message says what to report.
    case internalError = 13
    /// The server cannot serve now (starting, draining, store unreachable); retry later.
    case unavailable = 14
    /// Data was lost or corrupted (e.g. a stored artifact fails its checksum).
    case dataLoss = 15
    /// The Hello carried no token, or one that is unknown, expired or revoked.
    case unauthenticated = 16

    /// The code for a number read off the wire; numbers this version does not know become
    /// `.unknown`, as gRPC does.
    public init(wireValue: Int) {
        if wireValue >= 0, wireValue <= Int(UInt32.max), let code = StatusCode(rawValue: UInt32(wireValue)) {
            self = code
        } else {
            self = .unknown
        }
    }

    /// The code's name as gRPC spells it, e.g. `INVALID_ARGUMENT`.
    public var description: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internalError: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }
}
