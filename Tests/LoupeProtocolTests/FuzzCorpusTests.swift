import Foundation
import FrameFuzzHarness
@testable import LoupeProtocol
import NIOCore
import Testing

/// Replays the fuzz target's seed corpus (Tests/LoupeProtocolTests/Corpus/frames) through the
/// same entry logic the fuzzer runs, `FrameFuzzing.run`. A file's name says what it must do:
/// `valid-*` frames that all decode, `frame-*` frames without a framing error, `reject-*` a
/// framing error, `truncated-*` a stream that ends inside a frame; anything else (inputs the
/// fuzzer found) must simply not crash.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Corpus/frames")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    @Test func theCorpusHasASeedForEveryMethod() {
        let files = Self.files
        #expect(files.count >= 30)
        for method in LoupeProtocol.Method.allCases {
            #expect(files.contains("valid-\(method)-request.bin"), "\(method)")
            #expect(files.contains("valid-\(method)-response.bin"), "\(method)")
        }
    }

    @Test(arguments: files)
    func replay(file: String) throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent(file))
        let outcome = data.withUnsafeBytes { FrameFuzzing.run($0) }
        if file.hasPrefix("valid-") {
            #expect(outcome.error == nil && !outcome.truncated)
            #expect(!outcome.headers.isEmpty)
            #expect(outcome.decodedPayloads == outcome.headers.count)
        } else if file.hasPrefix("frame-") {
            #expect(outcome.error == nil && !outcome.truncated)
            #expect(!outcome.headers.isEmpty)
        } else if file.hasPrefix("reject-") {
            #expect(outcome.error != nil)
        } else if file.hasPrefix("truncated-") {
            #expect(outcome.error == nil && outcome.truncated)
        }
    }

    /// Writes the seed corpus: `LOUPE_WRITE_CORPUS=1 swift test --filter FuzzCorpusTests`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LOUPE_WRITE_CORPUS"] == "1"))
    func writeSeedCorpus() throws {
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        func write(_ name: String, _ buffer: ByteBuffer) throws {
            try Data(buffer.readableBytesView).write(to: Self.directory.appendingPathComponent(name))
        }
        func raw(_ parts: [UInt8]...) -> ByteBuffer { ByteBuffer(bytes: parts.flatMap { $0 }) }
        let be32 = { (v: UInt32) -> [UInt8] in [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        let predictHeader: [UInt8] = [1, 1, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]

        var pipelined = ByteBuffer()
        for (i, method) in LoupeProtocol.Method.allCases.enumerated() {
            let id = UInt32(i + 1)
            var request = try Samples.requestFrame(method, id: id)
            try write("valid-\(method)-request.bin", request)
            try write("valid-\(method)-response.bin", try Samples.responseFrame(method, id: id))
            try write(
                "valid-\(method)-error.bin",
                ByteBuffer(
                    errorFrameFor: ProtocolError(code: .invalidArgument, message: "\(method): example"),
                    replyingTo: .request(method, requestID: id)))
            pipelined.writeBuffer(&request)
        }
        try write("valid-pipelined-requests.bin", pipelined)
        try write(
            "valid-connection-error.bin",
            ByteBuffer(errorFrameFor: ProtocolError(code: .resourceExhausted, message: "too big"), replyingTo: nil))
        let bigBatch = Loupe_V1_BatchPredictRequest.with { $0.rows = Samples.columns(rows: 400) }
        try write(
            "valid-batch-over-the-handshake-limit.bin",
            try ByteBuffer(frameWith: .request(.batchPredict, requestID: 1, rowCount: 400), message: bigBatch))

        try write("frame-unknown-method.bin", raw(be32(18), [1, 1, 0x03, 0xe7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [8, 1]))
        try write("frame-garbage-payload.bin", raw(be32(20), predictHeader, [0x0a, 0x64, 1, 2]))
        try write("frame-compressed.bin", raw(be32(16), [1, 0x09, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]))

        try write("reject-length-max.bin", raw(be32(UInt32.max), predictHeader))
        try write("reject-length-zero.bin", raw(be32(0)))
        try write("reject-length-15.bin", raw(be32(15), Array(predictHeader.prefix(15))))
        try write("reject-version-2.bin", raw(be32(16), [2], Array(predictHeader.dropFirst())))
        try write("reject-version-0.bin", raw(be32(16), [0], Array(predictHeader.dropFirst())))
        try write("reject-reserved-flag.bin", raw(be32(16), [1, 0x41], Array(predictHeader.dropFirst(2))))
        try write("reject-request-and-response.bin", raw(be32(16), [1, 0x03], Array(predictHeader.dropFirst(2))))
        try write("reject-no-direction.bin", raw(be32(16), [1, 0x00], Array(predictHeader.dropFirst(2))))
        try write("reject-error-on-request.bin", raw(be32(16), [1, 0x05], Array(predictHeader.dropFirst(2))))
        try write("reject-http-request.bin", ByteBuffer(string: "GET / HTTP/1.1\r\nHost: loupe\r\n\r\n"))
        try write("reject-tls-client-hello.bin", raw([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
        var goodThenBad = try Samples.requestFrame(.health, id: 1)
        goodThenBad.writeBytes(be32(0))
        try write("reject-after-a-good-frame.bin", goodThenBad)

        let predict = try Samples.requestFrame(.predict, id: 3)
        try write("truncated-length.bin", predict.getSlice(at: 0, length: 2)!)
        try write("truncated-header.bin", predict.getSlice(at: 0, length: 11)!)
        try write("truncated-payload.bin", predict.getSlice(at: 0, length: predict.readableBytes - 1)!)
    }
}
