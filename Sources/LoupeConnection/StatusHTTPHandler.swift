import NIOCore
import NIOHTTP1

/// The small HTTP/1.1 endpoint beside the binary protocol that the model server and the
/// gateway both serve on their metrics port: `GET /metrics` (Prometheus text), `GET /healthz`
/// (200 when ready, 503 otherwise) and, when given, `GET /report[/VERSION]`. Anything else is
/// 404. Written on NIOHTTP1 directly: three routes do not need a web framework.
public final class StatusHTTPHandler: ChannelInboundHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    /// The answer to `/healthz`.
    public struct Health: Sendable {
        public var ready: Bool
        public var contentType: String
        public var body: String

        public init(ready: Bool, contentType: String, body: String) {
            self.ready = ready
            self.contentType = contentType
            self.body = body
        }
    }

    private let metrics: @Sendable () -> String
    private let health: @Sendable () -> Health
    private let report: (@Sendable (String) -> String?)?
    private var head: HTTPRequestHead?

    /// `report` renders `/report/VERSION` ("" for `/report`); nil: no report route.
    public init(
        metrics: @escaping @Sendable () -> String, health: @escaping @Sendable () -> Health,
        report: (@Sendable (String) -> String?)? = nil
    ) {
        self.metrics = metrics
        self.health = health
        self.report = report
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            switch (head.method, path) {
            case (.GET, "/metrics"):
                respond(context, head, .ok, "text/plain; version=0.0.4", metrics())
            case (.GET, "/healthz"):
                let health = health()
                respond(context, head, health.ready ? .ok : .serviceUnavailable, health.contentType, health.body)
            case (.GET, let path) where report != nil && (path == "/report" || path.hasPrefix("/report/")):
                if let page = report?(String(path.dropFirst("/report".count).drop { $0 == "/" })) {
                    respond(context, head, .ok, "text/html; charset=utf-8", page)
                } else {
                    respond(context, head, .notFound, "text/plain", "no such model version\n")
                }
            default:
                let routes = report == nil ? "/metrics or /healthz" : "/metrics, /healthz or /report[/VERSION]"
                respond(context, head, .notFound, "text/plain", "not found: try \(routes)\n")
            }
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String,
        _ body: String
    ) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
