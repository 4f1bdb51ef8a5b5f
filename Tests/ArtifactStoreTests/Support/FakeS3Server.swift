import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP server on loopback that answers each request with whatever the test's handler
/// returns: for the failures a real S3 server cannot be made to produce on demand (500s, 403
/// with a chatty body, 412 on the first try).
final class FakeS3Server: Sendable {
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// Sends only this many bytes of the body (with the full Content-Length), then drops the
        /// connection: a transfer cut off mid-way.
        var cutAfter: Int?

        static func error(_ status: HTTPResponseStatus, code: String, message: String) -> Reply {
            Reply(
                status: status, headers: [("content-type", "application/xml")],
                body: Array("<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>".utf8))
        }
    }

    let port: Int
    private let channel: any Channel
    private let log = NIOLockedValueBox<[Request]>([])

    /// What was received, in order.
    var requests: [Request] { log.withLockedValue { $0 } }

    /// `handler` gets each request and its index (0-based, in arrival order).
    init(_ handler: @escaping @Sendable (Request, Int) -> Reply) throws {
        let log = self.log
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(log: log, handler: handler))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    func stop() { try? channel.close().wait() }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let log: NIOLockedValueBox<[Request]>
        let handler: @Sendable (Request, Int) -> Reply
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(log: NIOLockedValueBox<[Request]>, handler: @escaping @Sendable (Request, Int) -> Reply) {
            self.log = log
            self.handler = handler
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = Request(method: head.method, uri: head.uri, headers: head.headers, body: body)
                let index = log.withLockedValue { log -> Int in
                    log.append(request)
                    return log.count - 1
                }
                let reply = handler(request, index)
                var headers = HTTPHeaders(reply.headers)
                headers.replaceOrAdd(name: "content-length", value: "\(reply.body.count)")
                headers.replaceOrAdd(name: "date", value: "Mon, 07 Dec 2026 18:45:26 GMT")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
                if let cut = reply.cutAfter {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body.prefix(cut))))), promise: nil)
                    context.flush()
                    context.close(promise: nil)
                    return
                }
                if head.method != .HEAD {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
