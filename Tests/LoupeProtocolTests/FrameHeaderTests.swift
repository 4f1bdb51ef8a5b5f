import LoupeProtocol
import NIOCore
import Testing

@Suite("Frame header")
struct FrameHeaderTests {
    @Test func layoutIsBigEndianAtTheDocumentedOffsets() {
        let header = FrameHeader(
            flags: .request, methodID: 0x0304, requestID: 0x0506_0708, rowCount: 0x090A_0B0C,
            deadlineMilliseconds: 0x0D0E_0F10)
        var bytes = ByteBuffer()
        #expect(bytes.writeFrameHeader(header) == FrameHeader.size)
        #expect(bytes.hexString == "01" + "01" + "0304" + "05060708" + "090a0b0c" + "0d0e0f10")
        #expect(bytes.readFrameHeader() == header)
        #expect(bytes.readableBytes == 0)
    }

    @Test func setFrameHeaderMatchesWriteFrameHeader() {
        let header = FrameHeader.request(.batchPredict, requestID: 99, rowCount: 100_000, deadlineMilliseconds: 250)
        var written = ByteBuffer()
        written.writeFrameHeader(header)
        var set = ByteBuffer(repeating: 0xEE, count: 20)
        set.setFrameHeader(header, at: 2)
        #expect(set.getSlice(at: 2, length: 16) == written)
        #expect(set.getInteger(at: 18, as: UInt16.self) == 0xEEEE)
    }

    @Test func readingNeedsAllSixteenBytes() {
        var bytes = ByteBuffer(repeating: 1, count: 15)
        #expect(bytes.readFrameHeader() == nil)
        #expect(bytes.readableBytes == 15)
    }

    @Test func repliesEchoMethodAndRequestID() {
        let request = FrameHeader.request(.batchPredict, requestID: 77, rowCount: 5, deadlineMilliseconds: 100)
        let response = request.response(rowCount: 5)
        #expect(response.flags == .response)
        #expect(response.method == .batchPredict)
        #expect(response.requestID == 77)
        #expect(response.rowCount == 5)
        #expect(response.deadlineMilliseconds == 0)
        let error = request.errorResponse()
        #expect(error.flags == [.response, .error])
        #expect(error.requestID == 77)
        #expect(error.methodID == Method.batchPredict.rawValue)
        #expect(FrameHeader.connectionError.methodID == 0 && FrameHeader.connectionError.requestID == 0)
        #expect(throws: Never.self) { try response.validate() }
        #expect(throws: Never.self) { try error.validate() }
        #expect(throws: Never.self) { try request.validate() }
    }

    @Test func describesItself() {
        #expect(FrameHeader.request(.predict, requestID: 7).description == "Predict#7 [request]")
        #expect(
            FrameHeader(flags: [.response, .error], methodID: 99, requestID: 1).description
                == "method 99#1 [response, error]")
        #expect(FrameFlags(rawValue: 0x31).description == "[request, reserved(0x30)]")
    }

    // The numbers in Swift agree with Protos/loupe/v1/frame.proto, which the C client uses.

    @Test func methodIDsMatchTheProto() {
        #expect(Method.allCases.count == Loupe_V1_Method.allCases.count - 1)
        for method in Method.allCases {
            #expect(Loupe_V1_Method(rawValue: Int(method.rawValue)) != nil)
        }
        #expect(Int(Method.predict.rawValue) == Loupe_V1_Method.predict.rawValue)
        #expect(Int(Method.batchPredict.rawValue) == Loupe_V1_Method.batchPredict.rawValue)
        #expect(Int(Method.getJob.rawValue) == Loupe_V1_Method.getJob.rawValue)
        #expect(Int(Method.hello.rawValue) == Loupe_V1_Method.hello.rawValue)
        #expect(Int(Method.health.rawValue) == Loupe_V1_Method.health.rawValue)
        #expect(Int(Method.findSimilar.rawValue) == Loupe_V1_Method.findSimilar.rawValue)
        #expect(Int(Method.listModels.rawValue) == Loupe_V1_Method.listModels.rawValue)
        #expect(Int(Method.retrain.rawValue) == Loupe_V1_Method.retrain.rawValue)
        #expect(Int(Method.noneID) == Loupe_V1_Method.none.rawValue)
    }

    @Test func flagsAndVersionMatchTheProto() {
        #expect(Int(FrameFlags.request.rawValue) == Loupe_V1_FrameFlag.request.rawValue)
        #expect(Int(FrameFlags.response.rawValue) == Loupe_V1_FrameFlag.response.rawValue)
        #expect(Int(FrameFlags.error.rawValue) == Loupe_V1_FrameFlag.error.rawValue)
        #expect(Int(FrameFlags.compressed.rawValue) == Loupe_V1_FrameFlag.compressed.rawValue)
        #expect(Int(FrameHeader.currentVersion) == Loupe_V1_ProtocolVersion.protocolVersion1.rawValue)
    }

    @Test func statusCodesMatchTheProto() {
        #expect(StatusCode.allCases.count == Loupe_V1_StatusCode.allCases.count)
        for code in StatusCode.allCases {
            let proto = Loupe_V1_StatusCode(rawValue: Int(code.rawValue))
            #expect(proto != nil)
            // Same name: INVALID_ARGUMENT ↔ invalidArgument, INTERNAL ↔ internalError.
            let protoName = String(describing: proto!).lowercased()
            let name = code.description.replacingOccurrences("_", with: "").lowercased()
            #expect(protoName == name || (code == .internalError && protoName == "internal"), "\(code)")
        }
        #expect(StatusCode(wireValue: 99) == .unknown)
        #expect(StatusCode(wireValue: -1) == .unknown)
        #expect(StatusCode(wireValue: 16) == .unauthenticated)
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: Character, with replacement: String) -> String {
        var result = ""
        for c in self { if c == target { result += replacement } else { result.append(c) } }
        return result
    }
}
