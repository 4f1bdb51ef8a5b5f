import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 endpoint beside the binary protocol: `GET /metrics` (Prometheus text
/// format) and `GET /healthz` (200 when ready, 503 otherwise, with a JSON body). Anything
/// else is 404. Written on NIOHTTP1 directly: two routes do not need a web framework.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ServerMetrics
    private let health: @Sendable () -> (ready: Bool, json: String)
    private let report: @Sendable (String) -> String?
    private var head: HTTPRequestHead?

    init(metrics: ServerMetrics, health: @escaping @Sendable () -> (ready: Bool, json: String),
         report: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.metrics = metrics
        self.health = health
        self.report = report
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
                respond(context, head, .ok, "text/plain; version=0.0.4", metrics.exposition())
            case (.GET, "/healthz"):
                let (ready, json) = health()
                respond(context, head, ready ? .ok : .serviceUnavailable, "application/json", json)
            case (.GET, let path) where path == "/report" || path.hasPrefix("/report/"):
                if let page = report(String(path.dropFirst("/report".count).drop { $0 == "/" })) {
                    respond(context, head, .ok, "text/html; charset=utf-8", page)
                } else {
                    respond(context, head, .notFound, "text/plain", "no such model version\n")
                }
            default:
                respond(context, head, .notFound, "text/plain", "not found: try /metrics, /healthz or /report[/VERSION]\n")
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
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
