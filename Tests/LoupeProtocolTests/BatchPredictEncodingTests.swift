import LoupeProtocol
import NIOCore
import SwiftProtobuf
import Testing

/// The hand-written BatchPredict encoder writes exactly SwiftProtobuf's bytes.
@Suite struct BatchPredictEncodingTests {
    func payload(_ frame: Frame) -> [UInt8] {
        var payload = frame.payload
        return payload.readBytes(length: payload.readableBytes) ?? []
    }

    func columns(rows: Int, seed: UInt64) -> Loupe_V1_DiamondColumns {
        var rng = seed
        func next() -> UInt64 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return rng >> 33
        }
        var c = Loupe_V1_DiamondColumns()
        for _ in 0..<rows {
            c.carat.append(Double(next() % 500) / 100)
            c.cut.append(Loupe_V1_Cut(rawValue: Int(next() % 6)) ?? .UNRECOGNIZED(0))
            c.color.append(Loupe_V1_Color(rawValue: Int(next() % 8)) ?? .UNRECOGNIZED(0))
            c.clarity.append(Loupe_V1_Clarity(rawValue: Int(next() % 9)) ?? .UNRECOGNIZED(0))
            c.depth.append(-Double(next() % 70))
            c.table.append(.nan)
            c.x.append(Double(next()))
            c.y.append(.infinity)
            c.z.append(-0.0)
        }
        return c
    }

    @Test(arguments: [0, 1, 7, 200, 20_000])
    func sameBytesAsSwiftProtobuf(rows: Int) throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = columns(rows: rows, seed: UInt64(rows))
        request.level = 0.8
        request.explain = rows % 2 == 1
        request.model.name = "diamonds"
        request.model.version = 3
        let header = FrameHeader.request(.batchPredict, requestID: 5, rowCount: UInt32(rows))
        let fast = try Frame(header: header, batchPredict: request)
        let reference = try Frame(header: header, message: request)
        #expect(payload(fast) == payload(reference))
        #expect(fast.header == reference.header)
        #expect(try fast.decode(Loupe_V1_BatchPredictRequest.self).rows.carat.count == rows)
    }

    @Test func unknownAndLargeGradeNumbersAndRaggedColumns() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows.cut = [.UNRECOGNIZED(300), .ideal, .UNRECOGNIZED(-1), .UNRECOGNIZED(127), .UNRECOGNIZED(128)]
        request.rows.carat = [1, 2]  // columns of different lengths encode as given
        let header = FrameHeader.request(.batchPredict, requestID: 1, rowCount: 5)
        #expect(payload(try Frame(header: header, batchPredict: request)) == payload(try Frame(header: header, message: request)))
    }

    @Test func noRowsAtAll() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.level = 0.5
        let header = FrameHeader.request(.batchPredict, requestID: 1)
        #expect(payload(try Frame(header: header, batchPredict: request)) == payload(try Frame(header: header, message: request)))
        let empty = Loupe_V1_BatchPredictRequest()
        #expect(payload(try Frame(header: header, batchPredict: empty)).isEmpty)
    }
}
