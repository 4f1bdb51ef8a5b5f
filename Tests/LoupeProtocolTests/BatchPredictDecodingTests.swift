@testable import LoupeProtocol
import NIOCore
import SwiftProtobuf
import Testing

/// The hand-written BatchPredict reader gives exactly what SwiftProtobuf's decoding and
/// `featureColumns()` give, takes the fast path for what encoders send, and leaves everything
/// else (and every error) to SwiftProtobuf.
@Suite struct BatchPredictDecodingTests {
    let header = FrameHeader.request(.batchPredict, requestID: 3, rowCount: 0)

    /// The reference: SwiftProtobuf, then the columns as the server used to build them.
    func reference(_ payload: ByteBuffer) throws(ProtocolError) -> BatchPredictInput {
        BatchPredictInput(try Frame(header: header, payload: payload).decode(Loupe_V1_BatchPredictRequest.self))
    }

    func expectSame(_ payload: ByteBuffer, fast: Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect((BatchPredictReader.read(payload) != nil) == fast, "fast path taken", sourceLocation: sourceLocation)
        let got = try Frame(header: header, payload: payload).decodeBatchPredict()
        let want = try reference(payload)
        #expect(got.request == want.request, sourceLocation: sourceLocation)
        #expect(got.columns.map { $0.map(\.bitPattern) } == want.columns.map { $0.map(\.bitPattern) },
                sourceLocation: sourceLocation)
        #expect(got.rowCount == want.rowCount, sourceLocation: sourceLocation)
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
            // 0 and values past the last level are missing or unknown grades: NaN.
            c.cut.append(Loupe_V1_Cut(rawValue: Int(next() % 7)) ?? .unspecified)
            c.color.append(Loupe_V1_Color(rawValue: Int(next() % 9)) ?? .unspecified)
            c.clarity.append(Loupe_V1_Clarity(rawValue: Int(next() % 10)) ?? .unspecified)
            c.depth.append(-Double(next() % 70))
            c.table.append(.nan)
            c.x.append(Double(next()))
            c.y.append(.infinity)
            c.z.append(-0.0)
        }
        return c
    }

    func payload(_ request: Loupe_V1_BatchPredictRequest, handWritten: Bool) throws -> ByteBuffer {
        handWritten ? try Frame(header: header, batchPredict: request).payload : try Frame(header: header, message: request).payload
    }

    @Test(arguments: [0, 1, 7, 3000])
    func whatEncodersSendTakesTheFastPath(rows: Int) throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = columns(rows: rows, seed: UInt64(rows) + 11)
        request.level = 0.8
        request.explain = rows % 2 == 1
        request.model.name = "diamonds"
        request.model.alias = "canary"
        for handWritten in [true, false] {
            try expectSame(try payload(request, handWritten: handWritten), fast: true)
        }
        let input = try Frame(header: header, payload: try payload(request, handWritten: true)).decodeBatchPredict()
        #expect(!input.request.hasRows)
        #expect(input.request.level == 0.8)
        #expect(input.request.model.alias == "canary")
    }

    @Test func unknownLargeAndNegativeGradeNumbers() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows.cut = [.UNRECOGNIZED(300), .ideal, .UNRECOGNIZED(-1), .UNRECOGNIZED(127), .UNRECOGNIZED(128), .fair,
                            .unspecified]
        request.rows.color = [.d, .j, .UNRECOGNIZED(8), .UNRECOGNIZED(Int(Int32.min)), .e, .f, .g]
        request.rows.clarity = [.`if`, .i1, .UNRECOGNIZED(9), .UNRECOGNIZED(1 << 20), .vs1, .vs2, .si1]
        request.rows.carat = Array(repeating: 1, count: 7)
        try expectSame(try payload(request, handWritten: false), fast: true)
        let columns = try Frame(header: header, payload: try payload(request, handWritten: false)).decodeBatchPredict().columns
        #expect(columns[1][1] == 4)
        #expect(columns[1][5] == 0)
        #expect(columns[1].enumerated().filter { $0.element.isNaN }.map(\.offset) == [0, 2, 3, 4, 6])
        #expect(columns[2][0] == 6)
        #expect(columns[3][0] == 7)
    }

    /// Columns of one-byte varints take the table: 0, the last level, one past it and 127 (the
    /// largest one-byte value) map as the varint loop maps them.
    @Test func oneByteGradesAtTheEdges() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows.cut = [.unspecified, .ideal, .UNRECOGNIZED(6), .UNRECOGNIZED(127), .fair]
        request.rows.color = [.j, .UNRECOGNIZED(8), .d, .UNRECOGNIZED(100), .e]
        request.rows.clarity = [.`if`, .UNRECOGNIZED(9), .i1, .unspecified, .vs1]
        request.rows.carat = Array(repeating: 1, count: 5)
        try expectSame(try payload(request, handWritten: true), fast: true)
        let columns = try Frame(header: header, payload: try payload(request, handWritten: true)).decodeBatchPredict().columns
        #expect(columns[1].map { $0.isNaN ? -1 : $0 } == [-1, 4, -1, -1, 0])
        #expect(columns[2].map { $0.isNaN ? -1 : $0 } == [0, -1, 6, -1, 5])
        #expect(columns[3].map { $0.isNaN ? -1 : $0 } == [7, -1, 0, -1, 4])
    }

    @Test func raggedColumnsHaveNoRowCount() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = columns(rows: 5, seed: 3)
        request.rows.z.removeLast()
        try expectSame(try payload(request, handWritten: true), fast: true)
        #expect(try Frame(header: header, payload: try payload(request, handWritten: true)).decodeBatchPredict().rowCount == nil)
    }

    @Test func noRowsAndAnEmptyPayload() throws {
        try expectSame(ByteBuffer(), fast: true)
        var request = Loupe_V1_BatchPredictRequest()
        request.level = 0.5
        try expectSame(try payload(request, handWritten: false), fast: true)
        #expect(try Frame(header: header, payload: ByteBuffer()).decodeBatchPredict().rowCount == 0)
    }

    // MARK: Valid but unusual encodings: SwiftProtobuf decides

    /// A payload from raw protobuf fields.
    func raw(_ parts: [UInt8]...) -> ByteBuffer { ByteBuffer(bytes: parts.flatMap { $0 }) }
    func double(_ v: Double) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
    func lengthDelimited(_ field: UInt8, _ body: [UInt8]) -> [UInt8] {
        precondition(field < 16 && body.count < 128, "a one-byte tag and length")
        return [field << 3 | 2, UInt8(body.count)] + body
    }

    @Test func unpackedElementsAreMergedAsSwiftProtobufDoes() throws {
        // carat as two unpacked doubles, then a packed one; cut as unpacked varints.
        let rows = [0x09] + double(1.5) + [0x09] + double(2.5) + lengthDelimited(1, double(3.5)) + [0x10, 0x05, 0x10, 0x01]
        try expectSame(raw(lengthDelimited(1, rows)), fast: false)
        #expect(try reference(raw(lengthDelimited(1, rows))).columns[0] == [1.5, 2.5, 3.5])
    }

    @Test func aPackedColumnSplitInTwoIsJoined() throws {
        let rows = lengthDelimited(1, double(1) + double(2)) + lengthDelimited(2, [1, 2]) + lengthDelimited(1, double(3))
            + lengthDelimited(2, [3])
        try expectSame(raw(lengthDelimited(1, rows)), fast: true)
        #expect(try Frame(header: header, payload: raw(lengthDelimited(1, rows))).decodeBatchPredict().columns[0] == [1, 2, 3])
    }

    @Test func unknownFieldsInsideTheColumnsGoToSwiftProtobuf() throws {
        // Field 20 (length-delimited, a two-byte tag) and field 21 (varint 7).
        let rows = lengthDelimited(1, double(1)) + [0xA2, 0x01, 0x04, 1, 2, 3, 4] + [0xA8, 0x01, 0x07]
        try expectSame(raw(lengthDelimited(1, rows)), fast: false)
    }

    @Test func unknownTopLevelFieldsAreKept() throws {
        // Field 9 (varint 7) and field 10 (8 bytes) around the rows; level as field 3.
        let payload = raw([0x48, 0x07], lengthDelimited(1, lengthDelimited(1, double(1))), [0x51] + double(9), [0x19] + double(0.7))
        try expectSame(payload, fast: true)
        let input = try Frame(header: header, payload: payload).decodeBatchPredict()
        #expect(!input.request.unknownFields.data.isEmpty)
        #expect(input.request.level == 0.7)
    }

    @Test func theRowsFieldTwiceIsMergedBySwiftProtobuf() throws {
        let first = lengthDelimited(1, lengthDelimited(1, double(1)) + lengthDelimited(3, [2]))
        let second = lengthDelimited(1, lengthDelimited(1, double(2)) + lengthDelimited(3, [3]))
        try expectSame(raw(first, second), fast: false)
        #expect(try reference(raw(first, second)).columns[0] == [1, 2])
    }

    @Test func aGradeWrittenAsATenByteVarint() throws {
        // -2 as an int32 enum: ten bytes, sign-extended.
        let minusTwo: [UInt8] = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        try expectSame(raw(lengthDelimited(1, lengthDelimited(4, minusTwo + [0x83, 0x00]))), fast: true)
    }

    // MARK: Malformed payloads: the same error as before

    @Test(arguments: [
        // A packed double column whose length is not a multiple of 8.
        [0x0A, 0x05, 0x0A, 0x03, 0x00, 0x00, 0x00],
        // The rows field says 9 bytes, 2 follow.
        [0x0A, 0x09, 0x0A, 0x00],
        // A varint that never ends, inside a grade column.
        [0x0A, 0x04, 0x12, 0x02, 0x80, 0x80],
        // An 11-byte varint as a grade.
        [0x0A, 0x0D, 0x12, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        // Field number 0.
        [0x00, 0x01],
    ] as [[UInt8]])
    func malformedPayloadsFailAsBefore(bytes: [UInt8]) throws {
        let payload = ByteBuffer(bytes: bytes)
        #expect(BatchPredictReader.read(payload) == nil)
        var want: ProtocolError?
        do { _ = try reference(payload) } catch { want = error }
        var got: ProtocolError?
        do { _ = try Frame(header: header, payload: payload).decodeBatchPredict() } catch { got = error }
        #expect(want != nil)
        #expect(got?.code == want?.code)
        #expect(got?.message == want?.message)
    }

    @Test func aGroupIsLeftToSwiftProtobuf() throws {
        let payload = ByteBuffer(bytes: [0x5B, 0x5C] + lengthDelimited(1, lengthDelimited(1, double(1))))
        #expect(BatchPredictReader.read(payload) == nil)
        let want = Result { () throws(ProtocolError) in try reference(payload) }
        let got = Result { () throws(ProtocolError) in try Frame(header: header, payload: payload).decodeBatchPredict() }
        switch (want, got) {
        case (.success(let want), .success(let got)):
            #expect(got.request == want.request)
            #expect(got.columns == want.columns)
        case (.failure(let want), .failure(let got)):
            #expect(got.message == want.message)
        default:
            Issue.record("the reader and SwiftProtobuf disagree about a group: \(want) against \(got)")
        }
    }

    @Test func errorAndCompressedFramesAreRefusedAsBefore() throws {
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = columns(rows: 2, seed: 1)
        var compressed = header
        compressed.flags.insert(.compressed)
        let frame = Frame(header: compressed, payload: try payload(request, handWritten: true))
        #expect(throws: ProtocolError.self) { try frame.decodeBatchPredict() }
        do { _ = try frame.decodeBatchPredict() } catch { #expect(error.code == .unimplemented) }
    }
}
