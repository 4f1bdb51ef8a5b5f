import Foundation
import LoupeProtocol
import LoupeTestKit
import NIOCore
import Testing
import Zstd

/// No credential is ever written down: tokens and the internal server secret sent in every way a
/// client can send them (a first Hello, a second Hello on a live connection — answered
/// FAILED_PRECONDITION and recorded as a call —, a refused Hello) appear nowhere in the store
/// (guestbook, open and sealed payload archive segments, blobs: each file read raw and
/// decompressed), in `loupe logs export` (JSON and base64), or in the process's output, except
/// the admin token's one showing in the banner.
@Suite(.serialized) struct SecretsTests {
    @Test func noSecretReachesTheStoreTheExportOrTheProcessOutput() async throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try await CLIRunner.offPool { try RequestLogCLITests.Serve(dir: dir) }
        defer { serve.stop() }
        let serverPort = try #require(serve.serverPort, "\(serve.banner)")
        let admin = try #require(
            serve.banner.firstMatch(of: /(loupe_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6})/).map { String($0.1) })
        let internalSecret = try String(contentsOfFile: dir.path + "/loupe-store/server.secret", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let created = try await CLIRunner.run(["token", "create", "--name", "acme", "--calls-per-second", "1000"], in: dir)
        let partner = try #require(
            created.stdout.firstMatch(of: /(loupe_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6})/).map { String($0.1) })
        // A well-formed token that was never issued: refused, and not written down either.
        let forged = "loupe_AAAAAAAAAAAA_" + String(repeating: "b", count: 32) + "_cccccc"

        func hello(_ token: String, id: UInt32) throws -> ByteBuffer {
            var hello = Loupe_V1_Hello()
            hello.protocolVersion = 1
            hello.token = token
            hello.clientName = "secrets-test"
            return try ByteBuffer(frameWith: .request(.hello, requestID: id), message: hello)
        }
        let predict = try ByteBuffer(frameWith: .request(.predict, requestID: 9), message: {
            var request = Loupe_V1_PredictRequest()
            request.diamond = Loupe_V1_Diamond(RequestLogCLITests.diamond)
            return request
        }())

        // The model server's port: the internal secret, then a second Hello with each secret.
        let server = try RawConnection(port: serverPort, timeout: 60)
        #expect(Self.answered(try await server.handshake(token: internalSecret)))
        for (n, token) in [internalSecret, admin, partner, forged].enumerated() {
            server.send(try hello(token, id: UInt32(2 + n)))
            #expect(RawConnection.status(await server.readFrame()) == .failedPrecondition)
        }
        server.send(predict)
        #expect(Self.answered(await server.readFrame()))
        // The gateway's port: a partner's handshake, a second Hello, a call; a refused Hello.
        let gateway = try RawConnection(port: serve.port, timeout: 60)
        #expect(Self.answered(try await gateway.handshake(token: partner)))
        gateway.send(try hello(admin, id: 2))
        #expect(RawConnection.status(await gateway.readFrame()) == .failedPrecondition)
        gateway.send(predict)
        #expect(Self.answered(await gateway.readFrame()))
        let refused = try RawConnection(port: serve.port, timeout: 60)
        #expect(RawConnection.status(try await refused.handshake(token: forged)) == .unauthenticated)

        // The model server's four second Hellos are calls in the guestbook before the export is
        // read (the gateway answers its own and forwards nothing).
        var recorded = 0
        for _ in 0..<300 where recorded < 4 {
            let query = try await CLIRunner.run(["logs", "query", "--method", "Hello", "--json"], in: dir)
            recorded = query.stdout.components(separatedBy: "\"Hello\"").count - 1
            if recorded < 4 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(recorded == 4, "second Hellos are recorded as calls")
        let json = try await CLIRunner.run(["logs", "export"], in: dir)
        let raw = try await CLIRunner.run(["logs", "export", "--raw"], in: dir)
        #expect(json.status == 0 && raw.status == 0, "\(json.stderr) \(raw.stderr)")
        #expect(json.stdout.contains("Hello"), "the export holds the Hello calls (without their payloads)")

        // A graceful stop seals the open segment into the store's blobs. (Waited for on a thread
        // of its own: a cooperative thread held here would starve the suites running beside.)
        let stdout = try await CLIRunner.offPool {
            serve.stop()
            return String(decoding: serve.output.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(serve.process.terminationStatus == 0)

        let secrets = [admin, partner, forged, internalSecret]
        var places: [(String, Data)] = [
            ("logs export", Data(json.stdout.utf8)), ("logs export stderr", Data(json.stderr.utf8)),
            ("logs export --raw", Data(raw.stdout.utf8)), ("token create stderr", Data(created.stderr.utf8)),
            ("serve stdout after the banner", Data(stdout.utf8)),
            ("serve stderr", try Data(contentsOf: serve.log)),
        ]
        places += Self.base64Payloads(raw.stdout).map { ("logs export --raw (decoded)", $0) }
        let store = dir.appendingPathComponent("loupe-store")
        var files = 0
        for path in try Self.files(under: store) where !path.hasSuffix("/server.secret") {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            places.append((path, data))
            if let decompressed = Self.decompressed(data) { places.append((path + " (decompressed)", decompressed)) }
            files += 1
        }
        #expect(files > 5 && places.contains { $0.0.contains("/blobs/") && $0.0.hasSuffix("(decompressed)") })
        #expect(places.contains { $0.0.hasSuffix("/requests.sqlite") }, "the guestbook is scanned")
        for (place, data) in places {
            for secret in secrets {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(place) holds a secret")
                if secret.hasPrefix("loupe_") {
                    let hidden = String(secret.split(separator: "_")[2])
                    #expect(data.range(of: Data(hidden.utf8)) == nil, "\(place) holds a token's secret part")
                }
            }
        }
        // The banner shows the admin token once, as documented, and nothing else secret.
        #expect(serve.banner.components(separatedBy: admin).count == 2)
        for secret in [partner, forged, internalSecret] { #expect(!serve.banner.contains(secret)) }
    }

    /// Whether a reply came and is not an error.
    static func answered(_ frame: Frame?) -> Bool { frame.map { !$0.header.flags.contains(.error) } ?? false }

    /// Every file below `url`, recursively.
    static func files(under url: URL) throws -> [String] {
        var out: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: url.path)
        while let name = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = url.path + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append(path)
            }
        }
        return out
    }

    /// The content of the zstd frames from the first zstd magic number on (a blob or a
    /// segment), as far as they decode; nil without one.
    static func decompressed(_ data: Data) -> Data? {
        guard let start = data.range(of: Data([0x28, 0xB5, 0x2F, 0xFD]))?.lowerBound,
            let decompressor = try? ZstdDecompressor()
        else { return nil }
        var out = Data()
        let bytes = [UInt8](data[start...])
        _ = try? bytes.withUnsafeBytes { raw in
            try decompressor.decompress(raw) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Every base64 string value in `--raw` export lines, decoded.
    static func base64Payloads(_ export: String) -> [Data] {
        var out: [Data] = []
        for line in export.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else { continue }
            func walk(_ value: Any) {
                if let s = value as? String, s.count >= 8, let data = Data(base64Encoded: s) { out.append(data) }
                if let d = value as? [String: Any] { d.values.forEach(walk) }
                if let a = value as? [Any] { a.forEach(walk) }
            }
            walk(object)
        }
        return out
    }
}
