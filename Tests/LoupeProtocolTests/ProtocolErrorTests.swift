import LoupeProtocol
import Testing

@Suite("Protocol errors")
struct ProtocolErrorTests {
    @Test func convertsToAndFromAStatus() {
        let error = ProtocolError(
            code: .permissionDenied, message: "token of acme lacks scope admin for Retrain",
            fieldViolations: [.with { $0.field = "model_name"; $0.description_p = "unknown" }])
        let back = ProtocolError(status: error.status)
        #expect(back.code == .permissionDenied)
        #expect(back.message == error.message)
        #expect(back.fieldViolations == error.fieldViolations)
        #expect(back.cause == nil)
    }

    @Test func anOKOrUnknownCodeOnAnErrorFrameReadsAsUnknown() {
        var status = Loupe_V1_Status()
        status.code = .ok
        #expect(ProtocolError(status: status).code == .unknown)
        status.code = .UNRECOGNIZED(42)
        #expect(ProtocolError(status: status).code == .unknown)
    }

    @Test func longMessagesAreCutOnACharacterBoundary() {
        let long = String(repeating: "é", count: 2000)  // 2 bytes each
        let status = ProtocolError(code: .internalError, message: long).status
        #expect(status.message.utf8.count <= ProtocolError.maximumMessageBytes)
        #expect(status.message.hasSuffix("…"))
        #expect(status.message.dropLast().allSatisfy { $0 == "é" })
        let short = ProtocolError(code: .internalError, message: "fine").status
        #expect(short.message == "fine")
    }

    @Test func describesItselfWithTheCodeName() {
        let error = ProtocolError(code: .resourceExhausted, message: "too big")
        #expect(error.description == "RESOURCE_EXHAUSTED: too big")
    }
}
