import DiamondSchema
import Foundation
import LoupeProtocol
import LoupeTestKit
import NIOCore
import Retraining
import Testing

/// The model server does what docs/PROTOCOL.md says, in the corners an independent client
/// found: Retrain's row count, the COMPRESSED flag, half-closed connections, request ids 0 and
/// reused ids, a frame cut off by the client.
///
/// Its sockets read on dispatch threads (`LoupeTestKit.RawConnection`): a blocking read on one
/// of the two cooperative threads would starve the server's own handshake tasks, and every
/// other suite's, until it timed out.
@Suite(.serialized) struct ProtocolConformanceTests {
    static func connect(_ fixture: ServerFixture) async throws -> RawConnection {
        let socket = try fixture.raw()
        _ = try await socket.handshake(token: ServerFixture.secret)
        return socket
    }

    static func retrainFrame(rows: Int, declared: UInt32, id: UInt32) throws -> ByteBuffer {
        var request = Loupe_V1_RetrainRequest()
        if rows > 0 {
            var labelled = Loupe_V1_LabelledRows()
            labelled.diamonds = Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: rows))
            labelled.prices = Array(repeating: 5000, count: rows)
            request.rows = labelled
        }
        request.promotionMargin = 0.5
        return try ByteBuffer(frameWith: .request(.retrain, requestID: id, rowCount: declared), message: request)
    }

    static func isError(_ frame: Frame?, _ code: StatusCode) -> Bool {
        guard let frame, frame.header.flags.contains(.error), let status = try? frame.decode(Loupe_V1_Status.self)
        else { return false }
        return StatusCode(wireValue: status.code.rawValue) == code
    }

    @Test func retrainsHeaderRowCountMustBeTheRowsSent() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try await Self.connect(fixture)
        // The gateway charges the header's count: one that says fewer (or more) rows than sent
        // is refused before a job starts.
        for (n, declared) in [UInt32(0), 405, 1].enumerated() {
            raw.send(try Self.retrainFrame(rows: 400, declared: declared, id: UInt32(10 + n)))
            let reply = await raw.readFrame()
            #expect(reply?.header.requestID == UInt32(10 + n))
            #expect(Self.isError(reply, .invalidArgument), "header \(declared) for 400 rows")
        }
        raw.send(try Self.retrainFrame(rows: 0, declared: 3, id: 20))
        #expect(Self.isError(await raw.readFrame(), .invalidArgument), "rows declared, none sent")
        #expect(JobManager.all(in: fixture.catalog).isEmpty, "no job was started")
        // The count that matches is accepted.
        raw.send(try Self.retrainFrame(rows: 400, declared: 400, id: 22))
        let started = try #require(await raw.readFrame())
        #expect(!started.header.flags.contains(.error))
        let id = try started.decode(Loupe_V1_RetrainResponse.self).jobID
        #expect(JobManager.all(in: fixture.catalog).map(\.id) == [id])
    }

    @Test func theCompressedFlagIsAnsweredUnimplemented() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let raw = try await Self.connect(fixture)
        var request = Loupe_V1_PredictRequest()
        request.diamond = Loupe_V1_Diamond(sampleDiamond)
        var compressed = try ByteBuffer(frameWith: .request(.predict, requestID: 7), message: request)
        compressed.setInteger(UInt8(0x09), at: 5)  // REQUEST | COMPRESSED
        raw.send(compressed)
        let reply = try #require(await raw.readFrame())
        #expect(Self.isError(reply, .unimplemented))
        #expect(reply.header.requestID == 7 && reply.header.methodID == Method.predict.rawValue)
        // A call error: the connection goes on.
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 8), message: request))
        let next = try #require(await raw.readFrame())
        #expect(next.header.requestID == 8 && !next.header.flags.contains(.error))

        // Before the handshake nothing can be decoded: UNIMPLEMENTED and a close.
        let early = try fixture.raw()
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = 1
        hello.token = ServerFixture.secret
        var helloFrame = try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello)
        helloFrame.setInteger(UInt8(0x09), at: 5)
        early.send(helloFrame)
        #expect(Self.isError(await early.readFrame(), .unimplemented))
        #expect(await early.readUntilClosed().isEmpty)
    }

    @Test func aHalfClosedConnectionGetsTheRepliesToItsCalls() async throws {
        // Every batch goes to the worker pool, so it is still running when the FIN arrives.
        let fixture = try await ServerFixture.start { $0.inlineBatchRows = 0 }
        defer { Task { await fixture.stop() } }
        let raw = try await Self.connect(fixture)
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = Loupe_V1_DiamondColumns(Array(repeating: sampleDiamond, count: 3000))
        var bytes = try ByteBuffer(frameWith: .request(.batchPredict, requestID: 2, rowCount: 3000), message: request)
        var predict = Loupe_V1_PredictRequest()
        predict.diamond = Loupe_V1_Diamond(sampleDiamond)
        var second = try ByteBuffer(frameWith: .request(.predict, requestID: 3), message: predict)
        bytes.writeBuffer(&second)
        raw.send(bytes)
        raw.finishSending()
        var replies: [UInt32: Frame] = [:]
        while let frame = await raw.readFrame() { replies[frame.header.requestID] = frame }
        #expect(replies.keys.sorted() == [2, 3])
        #expect(replies[2].map { !$0.header.flags.contains(.error) && $0.header.rowCount == 3000 } == true)
        // And then the server closed: the connection is gone.
        for _ in 0..<200 where fixture.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(fixture.server.openConnections == 0)
    }

    @Test func requestIDZeroIsAnsweredAndAReusedIDInFlightClosesTheConnection() async throws {
        let fixture = try await ServerFixture.start { $0.inlineBatchRows = 0 }
        defer { Task { await fixture.stop() } }
        let raw = try await Self.connect(fixture)
        // Id 0 is a call like any other; its reply carries the method id (a connection-level
        // error has method id 0).
        var predict = Loupe_V1_PredictRequest()
        predict.diamond = Loupe_V1_Diamond(sampleDiamond)
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 0), message: predict))
        let zero = try #require(await raw.readFrame())
        #expect(zero.header.requestID == 0 && zero.header.methodID == Method.predict.rawValue)
        #expect(!zero.header.flags.contains(.error))
        // Ids may be reused once answered.
        raw.send(try ByteBuffer(frameWith: .request(.predict, requestID: 0), message: predict))
        #expect(await raw.readFrame().map { !$0.header.flags.contains(.error) } == true)

        // Two one-row batches under one id (each goes to the worker pool), small enough to
        // arrive in one write and one read: the server decodes the second before the first's
        // answer can come back to the event loop, so the first is in flight whatever the load.
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = Loupe_V1_DiamondColumns([sampleDiamond])
        var bytes = try ByteBuffer(frameWith: .request(.batchPredict, requestID: 5, rowCount: 1), message: request)
        var again = try ByteBuffer(frameWith: .request(.batchPredict, requestID: 5, rowCount: 1), message: request)
        bytes.writeBuffer(&again)
        raw.send(bytes)
        var frames: [Frame] = []
        while let frame = await raw.readFrame() { frames.append(frame) }
        // A connection-level INVALID_ARGUMENT, the first call's answer, then the close.
        let connectionErrors = frames.filter { $0.header.methodID == Method.noneID }
        #expect(connectionErrors.count == 1 && Self.isError(connectionErrors.first, .invalidArgument))
        let answers = frames.filter { $0.header.requestID == 5 }
        #expect(answers.count == 1 && answers.first.map { !$0.header.flags.contains(.error) } == true)
    }

    @Test func aFrameCutOffByTheClientIsLoggedAsCancelled() async throws {
        let lines = LogLines()
        let fixture = try await ServerFixture.start(logger: lines.logger(label: "loupe.server"))
        defer { Task { await fixture.stop() } }
        do {
            let raw = try await Self.connect(fixture)
            var predict = Loupe_V1_PredictRequest()
            predict.diamond = Loupe_V1_Diamond(sampleDiamond)
            let frame = try ByteBuffer(frameWith: .request(.predict, requestID: 2), message: predict)
            raw.send(Array(frame.readableBytesView.prefix(frame.readableBytes - 3)))
        }  // closed three bytes short
        for _ in 0..<500 where !lines.contains("CANCELLED") { try await Task.sleep(for: .milliseconds(10)) }
        #expect(lines.contains("CANCELLED"), "\(lines.all)")
    }
}
