import LoupeProtocol
import NIOCore

/// The life of one protocol connection, as a value with explicit states and transitions, shared
/// by the model server's and the gateway's connection handlers. It decides; the handler acts
/// (authenticates, answers or forwards calls, writes, closes) and keeps only its own policy.
///
/// ```text
/// awaitingHello ──Hello──▶ authenticating ──accepted──▶ ready ──drain / FIN / violation──▶ closing
///       │ Health: answered       │ frames queue            │ calls
///       └─ anything else: fail   └─ refused: fail          └─ closing once nothing is in flight
/// refused (over a connection cap): Health answered, anything else fails
/// ```
///
/// Backpressure: with `maxInFlight` calls in flight the handler stops reading (`shouldRead`);
/// a finished call may resume it. Draining (graceful shutdown), a client's half-close and a
/// reused request id all stop new calls and close once the calls in flight are answered.
/// Only the event loop of its channel touches it.
public struct ConnectionStateMachine<Session> {
    public enum State {
        /// Before the handshake: Hello and Health only.
        case awaitingHello
        /// The Hello is being checked; calls that arrive meanwhile wait here, in order, with
        /// when they arrived (a gateway passes on the deadline less the time it held a call).
        case authenticating(queued: [(Frame, NIODeadline)])
        /// Handshake done: calls for `Session`.
        case ready(Session)
        /// Over a connection cap: Health is answered until the refusal is sent.
        case refused(ProtocolError)
        /// Closing or closed: frames are dropped.
        case closing
    }

    /// What the handler does with a frame that arrived.
    public enum FrameAction {
        /// Nothing: the connection is closing, or its output is closed.
        case drop
        /// Send `error` (for `replyingTo`, or connection-level when nil) and close.
        case fail(ProtocolError, replyingTo: FrameHeader?, FailureReason)
        /// A Hello: check it, then call `handshakeSucceeded` or `handshakeFailed`.
        case handshake(Frame)
        /// A Health before the handshake (or on a refused connection): answer it locally.
        case health(Frame)
        /// Queued until the handshake ends.
        case queued
        /// A call to answer (or forward) for `Session`, received at the deadline given. Mark it
        /// `callStarted` if it will finish later; a call answered at once needs no mark.
        case call(Frame, Session, received: NIODeadline)
        /// Answer this call with `error` (a call error: the connection stays).
        case reject(ProtocolError, Frame, Session)
        /// A protocol violation: send `error` as a connection-level error frame; no more reads;
        /// once nothing is in flight, close the output (`closeAfterWrites(.output)` comes from
        /// `callFinished`, or now when `closeNow` is set).
        case violation(ProtocolError, closeNow: Bool)
    }

    public typealias Close = ConnectionClose
    public typealias AfterCall = ConnectionAfterCall
    public typealias FailureReason = ConnectionFailureReason

    public private(set) var state: State
    /// Calls that will finish later (marked with `callStarted`).
    public private(set) var inFlight = 0
    /// The most calls in flight before the handler stops reading.
    public let maxInFlight: Int
    /// Set by `drain` (graceful shutdown) and by a protocol violation: no new calls.
    public private(set) var draining = false
    /// Set when the peer closed its sending side (or cut a frame short).
    public private(set) var inputClosed = false
    /// Set once the output is closed: whatever still arrives is read and dropped.
    public private(set) var outputClosed = false
    private var readPending = false
    private var inFlightIDs = Set<UInt32>()

    /// A new connection, waiting for its Hello.
    public init(maxInFlight: Int) {
        self.maxInFlight = max(1, maxInFlight)
        state = .awaitingHello
    }

    // MARK: Frames

    /// What to do with a frame the decoder handed on (at `now`).
    public mutating func received(_ frame: Frame, at now: NIODeadline = .now()) -> FrameAction {
        if outputClosed { return .drop }
        let header = frame.header
        guard header.flags.subtracting(.compressed) == .request else {
            state = .closing
            return .fail(
                ProtocolError(
                    code: .invalidArgument,
                    message: "a client may only send request frames (flags 0x01), got \(header.flags)"),
                replyingTo: nil, .notARequest)
        }
        switch state {
        case .closing:
            return .drop
        case .refused(let error):
            if header.method == .health, !header.flags.contains(.compressed) { return .health(frame) }
            state = .closing
            return .fail(error, replyingTo: header, .overCapacity)
        case .authenticating(var queued):
            guard queued.count < maxInFlight else {
                state = .closing
                return .fail(
                    ProtocolError(code: .resourceExhausted, message: "too many calls sent before the Welcome"),
                    replyingTo: nil, .tooManyQueued)
            }
            queued.append((frame, now))
            state = .authenticating(queued: queued)
            return .queued
        case .awaitingHello:
            if header.flags.contains(.compressed) {
                state = .closing
                return .fail(Self.compressed(header), replyingTo: header, .compressedBeforeHandshake)
            }
            switch header.method {
            case .hello:
                state = .authenticating(queued: [])
                return .handshake(frame)
            case .health:
                return .health(frame)
            default:
                state = .closing
                return .fail(
                    ProtocolError(
                        code: .unauthenticated,
                        message: "the first call on a connection must be Hello (method 1) with a token; got method "
                            + "\(header.methodID)"),
                    replyingTo: header, .beforeHandshake)
            }
        case .ready(let session):
            return admit(frame, session, received: now)
        }
    }

    /// A call on a ready connection: a reused id in flight is a violation, COMPRESSED a call error.
    private mutating func admit(_ frame: Frame, _ session: Session, received: NIODeadline) -> FrameAction {
        let header = frame.header
        if inFlightIDs.contains(header.requestID) {
            draining = true
            state = .closing
            if inFlight == 0 { outputClosed = true }
            return .violation(
                ProtocolError(
                    code: .invalidArgument,
                    message: "request id \(header.requestID) is already in flight on this connection; ids must be "
                        + "unique among the calls in flight, so this call was not run and the connection closes once "
                        + "the others are answered"),
                closeNow: inFlight == 0)
        }
        if header.flags.contains(.compressed) { return .reject(Self.compressed(header), frame, session) }
        return .call(frame, session, received: received)
    }

    /// The answer to a frame with the COMPRESSED flag: version 1 defines no compression.
    public static func compressed(_ header: FrameHeader) -> ProtocolError {
        ProtocolError(
            code: .unimplemented,
            message: "frame \(header) sets COMPRESSED (0x08): protocol version 1 defines no compression; send it "
                + "uncompressed")
    }

    // MARK: Handshake

    /// The Hello was accepted: the connection is ready, and the calls that waited for it are
    /// admitted in order (act on each action as on `received`'s). `close` is set when the peer
    /// already closed its side and nothing was left to run.
    public mutating func handshakeSucceeded(_ session: Session) -> (queued: [FrameAction], close: Close?) {
        guard case .authenticating(let queued) = state else { return ([], nil) }
        state = .ready(session)
        let actions = queued.map { admit($0.0, session, received: $0.1) }
        return (actions, closeIfInputDone())
    }

    /// The Hello was refused (the handler sends the refusal and closes).
    public mutating func handshakeFailed() {
        state = .closing
    }

    /// Whether a handshake is under way (its result may still arrive).
    public var isAuthenticating: Bool {
        if case .authenticating = state { return true }
        return false
    }

    /// Refuses the connection for a cap: only Health is answered until `failed()`.
    public mutating func refuse(_ error: ProtocolError) {
        state = .refused(error)
    }

    // MARK: Calls

    /// A call that will finish later is under way.
    public mutating func callStarted(_ header: FrameHeader) {
        inFlight += 1
        inFlightIDs.insert(header.requestID)
    }

    /// A call marked with `callStarted` finished; its reply is already written.
    public mutating func callFinished(_ header: FrameHeader) -> AfterCall {
        inFlight -= 1
        inFlightIDs.remove(header.requestID)
        if inputClosed { return closeIfInputDone().map { .close($0) } ?? .nothing }
        if draining {
            guard inFlight == 0 else { return .nothing }
            outputClosed = true
            return .close(.output)
        }
        if readPending && inFlight < maxInFlight {
            readPending = false
            return .read
        }
        return .nothing
    }

    // MARK: Reading and closing

    /// Whether the handler should pass a read request on to the channel now (if not, it is
    /// remembered and a finished call resumes it).
    public mutating func shouldRead() -> Bool {
        if outputClosed { return true }  // read and drop until the peer closes
        if inFlight >= maxInFlight || draining {
            readPending = true
            return false
        }
        return true
    }

    /// Graceful shutdown: no new calls; close the output once the calls in flight are answered.
    public mutating func drain() -> Close? {
        draining = true
        guard inFlight == 0 else { return nil }
        outputClosed = true
        return .output
    }

    /// The peer closed its sending side (or cut a frame short): answer what is in flight, then
    /// close.
    public mutating func inputEnded() -> Close? {
        inputClosed = true
        return closeIfInputDone()
    }

    private mutating func closeIfInputDone() -> Close? {
        guard inputClosed, inFlight == 0, !isAuthenticating else { return nil }
        state = .closing
        return .all
    }

    /// The connection fails (a framing error, a timeout, a refusal sent): returns false if it
    /// was closing already (nothing more to send).
    public mutating func failed() -> Bool {
        if case .closing = state { return false }
        state = .closing
        return true
    }

    /// The channel closed.
    public mutating func closed() {
        state = .closing
    }

    /// Whether the connection may be closed for idleness (no call in flight).
    public var isIdle: Bool { inFlight == 0 }
}

// Not Sendable: one channel's event loop owns it.

/// Why a frame ends the connection (for audit logs and metrics).
public enum ConnectionFailureReason: Equatable, Sendable {
    /// Flags other than a request's.
    case notARequest
    /// A call other than Hello or Health before the handshake.
    case beforeHandshake
    /// A COMPRESSED frame before the handshake (nothing can be decoded yet).
    case compressedBeforeHandshake
    /// More calls queued behind the handshake than may be in flight.
    case tooManyQueued
    /// The connection was refused for a cap and asked for more than Health.
    case overCapacity
}

/// How to close once the writes already queued have gone out.
public enum ConnectionClose: Equatable, Sendable {
    /// Close only the output (a FIN after the last reply) and read and drop until the peer
    /// closes: a full close with the peer's pipelined calls unread would make the kernel
    /// send a reset, which can destroy replies it has not read yet.
    case output
    /// Close the connection (the peer sends nothing more).
    case all
}

/// What the handler does after a call finished.
public enum ConnectionAfterCall: Equatable, Sendable {
    case nothing
    /// Ask the channel to read again (backpressure released).
    case read
    /// Close once the replies written so far have gone out.
    case close(ConnectionClose)
}
