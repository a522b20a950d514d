import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server for operations: `GET /metrics` (Prometheus text) and any other
/// path the owner registers (the registrar adds `/handlespace`). Bind it to loopback or a
/// management network; it has no authentication.
public final class StatusServer: Sendable {
    /// A path's answer: content type and body.
    public typealias Route = @Sendable () async -> (contentType: String, body: String)

    private let channel: Channel

    private init(channel: Channel) { self.channel = channel }

    public var localAddress: SocketAddress? { channel.localAddress }

    public static func start(on address: SocketAddress, routes: [String: Route],
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> StatusServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(StatusHandler(routes: routes))
                }
            }
            .bind(to: address).get()
        return StatusServer(channel: channel)
    }

    public func stop() async throws { try await channel.close() }
}

final class StatusHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let routes: [String: StatusServer.Route]

    init(routes: [String: StatusServer.Route]) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
        let keepAlive = head.isKeepAlive
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let route = routes[path]
        let promise = context.eventLoop.makePromise(of: (HTTPResponseStatus, String, String).self)
        if let route {
            promise.completeWithTask {
                let (type, body) = await route()
                return (.ok, type, body)
            }
        } else {
            promise.succeed((.notFound, "text/plain", "not found; try " + routes.keys.sorted().joined(separator: ", ") + "\n"))
        }
        promise.futureResult.whenSuccess { status, type, body in
            let context = bound.value
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { bound.value.close(promise: nil) }
            }
        }
    }
}
