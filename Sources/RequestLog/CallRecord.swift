import Foundation
import LoupeProtocol
import NIOCore

/// What a finished call hands to the request log: the frames as they were (payloads are
/// reference-counted buffers, so this copies nothing), who asked, when, how long it took, and
/// the row's fields the serving side already had decoded (`summary`).
public struct CallRecord: Sendable {
    /// When the call arrived (wall clock).
    public var at: Date
    /// The partner the call was made for (through the gateway, its `acting_for`).
    public var principal: String
    /// The public id of the partner's token, when a gateway vouched for it.
    public var tokenID: String?
    /// The method name as in docs/PROTOCOL.md (`Predict`, …; `unknown` for an unknown id).
    public var method: String
    /// The request frame (nil when there was none to keep).
    public var request: Frame?
    /// The reply frame sent: a response or an error with its status.
    public var response: Frame
    /// The call's status.
    public var status: StatusCode
    /// Time from the request's arrival to its reply.
    public var latencyNanoseconds: Int64
    /// The guestbook row's call-specific fields (rows, model, error, Predict's diamond and answer).
    public var summary: CallSummary

    public init(
        at: Date, principal: String, tokenID: String? = nil, method: String, request: Frame?, response: Frame,
        status: StatusCode, latencyNanoseconds: Int64, summary: CallSummary = CallSummary()
    ) {
        self.at = at
        self.principal = principal
        self.tokenID = tokenID
        self.method = method
        self.request = request
        self.response = response
        self.status = status
        self.latencyNanoseconds = latencyNanoseconds
        self.summary = summary
    }

    /// Bytes this record holds on to (for the queue's memory bound).
    var payloadBytes: Int { (request?.payload.readableBytes ?? 0) + response.payload.readableBytes }

    /// The record with every payload that can carry a credential emptied: a `Hello` request holds
    /// a bearer token or the internal server secret, and neither may reach the guestbook, the
    /// payload archive, an export or a backup of the store. The header stays, so the call is
    /// still recorded (who, when, which status). Applied where the log takes a call in, so
    /// every caller is covered.
    var withoutCredentials: CallRecord {
        guard let request, request.header.methodID == Method.hello.rawValue, request.payload.readableBytes > 0 else {
            return self
        }
        var record = self
        record.request = Frame(header: request.header, payload: ByteBuffer())
        return record
    }
}
