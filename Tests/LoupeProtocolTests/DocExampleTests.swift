import LoupeProtocol
import NIOCore
import Testing

/// The worked example of docs/PROTOCOL.md, byte for byte, so the document cannot drift from
/// the code.
@Suite("docs/PROTOCOL.md example")
struct DocExampleTests {
    static let request = """
        0000004e 01 01 0003 00000001 00000000 00000000
        0a3c
        09 295c8fc2f528f03f
        10 05  18 04  20 05
        29 6666666666e64e40
        31 0000000000004c40
        39 b81e85eb51b81940
        41 e17a14ae47e11940
        49 ec51b81e85eb0f40
        """

    static let response = """
        00000040 01 02 0003 00000001 00000000 00000000
        09 000000000012bc40
        11 0000000000b3b840
        19 0000000000e7bf40
        21 cdccccccccccec3f
        2a 08 6469616d6f6e6473
        30 07
        """

    static let error = """
        00000037 01 06 0003 00000002 00000000 00000000
        08 03
        12 23 6469616d6f6e642e6361726174206d757374206265203e20302c20676f74202d312e30
        """

    @Test func predictRequestBytes() throws {
        let request = Loupe_V1_PredictRequest.with {
            $0.diamond = .with {
                $0.carat = 1.01
                $0.cut = .ideal
                $0.color = .g
                $0.clarity = .vs1
                $0.depth = 61.8
                $0.table = 56
                $0.x = 6.43
                $0.y = 6.47
                $0.z = 3.99
            }
        }
        let bytes = try ByteBuffer(frameWith: .request(.predict, requestID: 1), message: request)
        #expect(bytes == ByteBuffer(hex: Self.request))
    }

    @Test func predictResponseBytes() throws {
        let response = Loupe_V1_PredictResponse.with {
            $0.price = 7186
            $0.low = 6323
            $0.high = 8167
            $0.level = 0.9
            $0.modelName = "diamonds"
            $0.modelVersion = 7
        }
        let header = FrameHeader.request(.predict, requestID: 1).response()
        let bytes = try ByteBuffer(frameWith: header, message: response)
        #expect(bytes == ByteBuffer(hex: Self.response))
    }

    @Test func errorReplyBytes() {
        let error = ProtocolError(code: .invalidArgument, message: "diamond.carat must be > 0, got -1.0")
        let bytes = ByteBuffer(errorFrameFor: error, replyingTo: .request(.predict, requestID: 2))
        #expect(bytes == ByteBuffer(hex: Self.error))
    }
}
