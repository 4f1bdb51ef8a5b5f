/// One call in the payload archive: its guestbook row and the full request and response
/// payloads (protobuf bytes as sent; an error reply's payload is a `Status`).
public struct ArchivedCall: Sendable, Hashable {
    public var row: GuestbookRow
    public var request: [UInt8]
    public var response: [UInt8]
    public var responseIsError: Bool

    public init(row: GuestbookRow, request: [UInt8], response: [UInt8], responseIsError: Bool) {
        self.row = row
        self.request = request
        self.response = response
        self.responseIsError = responseIsError
    }
}
