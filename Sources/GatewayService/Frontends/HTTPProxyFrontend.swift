import Gateway
import NIOCore
import NIOHTTP1

/// The client side of the HTTP proxy. CONNECT opens a tunnel (then the relay takes the raw
/// channel); absolute-form requests go to the named origin over a kept upstream connection
/// (reused while the client asks for the same origin), bodies streamed both ways with
/// backpressure, hop-by-hop fields removed. Failures answer 400/403/407/502/504 with a text
/// that says what failed.
final class HTTPProxyFrontend: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Names of the client pipeline's HTTP handlers (set up by the gateway at accept).
    enum HandlerName {
        static let encoder = "http-encoder"
        static let decoder = "http-decoder"
        static let pipelining = "http-pipelining"
        static let errors = "http-errors"
        static let idle = "http-idle"
        static let frontend = "http-proxy"
        static let idleCloser = "http-idle-closer"
    }

    private enum State {
        case idle
        /// Waiting for the upstream; request parts read meanwhile are queued.
        case connecting(pending: [HTTPClientRequestPart])
        case forwarding
        case tunnelling
        case closing
    }

    private var state = State.idle
    private var upstream: Channel?
    private var upstreamDestination: ProxyDestination?
    private var clientKeepAlive = true
    /// The client waits for "100 Continue" before sending its body.
    private var clientExpectsContinue = false
    private var responseStarted = false
    /// The origin's last response allows another request on the same connection.
    private var upstreamReusable = false
    private var headTimer: Scheduled<Void>?
    private let interpreter: HTTPProxyRequestInterpreter
    private let connection: GatewayConnection
    private let gateway: GatewayContext
    private var context: ChannelHandlerContext?

    init(connection: GatewayConnection, gateway: GatewayContext) {
        self.connection = connection
        self.gateway = gateway
        interpreter = HTTPProxyRequestInterpreter(credentials: gateway.configuration.credentials)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.inspectClient()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, state) {
        case (.head(let head), .idle):
            headTimer?.cancel()
            handle(head, context: context)
        case (.body(let body), _):
            send(.body(.byteBuffer(body)))
        case (.end(let trailers), _):
            send(.end(trailers))
        case (.head, _):
            // The pipelining handler delivers one request at a time; anything else is a bug upstream of us.
            refuse(HTTPProxyRefusal(.badRequest, "request while another is in progress"), context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding = state { upstream?.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .connecting, .closing, .tunnelling: return
        case .forwarding:
            if let upstream, !upstream.isWritable { return }
            context.read()
        case .idle:
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.read() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A request the decoder cannot read (bad chunk size, a head past the buffer limit):
        // the origin holds a truncated request, so its answer must never reach the client
        // after ours. Close the upstream first; one response per request.
        upstream?.close(promise: nil)
        upstream = nil
        if error is ByteToMessageDecoderError.PayloadTooLargeError, !responseStarted {
            gateway.metrics.handshakeFailure("http-431")
            refuse(HTTPProxyRefusal(.requestHeaderFieldsTooLarge, "request head longer than \(ProxyLimits.maximumHTTPHeadLength) bytes"), context: context)
        } else {
            connection.fail("refused", "malformed request: \(error)")
            gateway.metrics.handshakeFailure("http-400")
            gateway.logger.info("HTTP proxy request refused", metadata: ["id": "\(connection.id)", "status": "400", "reason": "malformed request: \(error)"])
            state = .closing
            // The protocol error handler has answered 400 (when no response was under way).
            context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client is done sending: close now if idle, else after this response.
            clientKeepAlive = false
            if case .idle = state { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: requests

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        clientKeepAlive = head.isKeepAlive
        clientExpectsContinue = head.headers["expect"].contains { $0.lowercased() == "100-continue" }
        switch interpreter.interpret(head) {
        case .refuse(let refusal):
            gateway.metrics.handshakeFailure("http-\(refusal.status.code)")
            // Credentials that do not verify count toward the source's block; a request
            // without any (a client's first try) does not.
            if refusal.status == .proxyAuthenticationRequired, head.headers.contains(name: "proxy-authorization") {
                gateway.authenticationFailed(from: context.remoteAddress)
            }
            refuse(refusal, context: context)
        case .tunnel(let destination, let user):
            connection.user = user
            if case .refused(let reason) = gateway.configuration.destinations.checkTunnel(destination, tunnelPorts: gateway.configuration.tunnelPorts) {
                connection.destination = destination.description
                gateway.metrics.handshakeFailure("http-403")
                refuse(HTTPProxyRefusal(.forbidden, reason), context: context)
                return
            }
            state = .connecting(pending: [])
            openTunnel(to: destination, context: context)
        case .forward(let destination, let forwarded, let user):
            connection.user = user
            responseStarted = false
            if let upstream, upstream.isActive, upstreamReusable, upstreamDestination == destination {
                state = .forwarding
                upstream.write(HTTPClientRequestPart.head(forwarded), promise: nil)
                sendContinueIfExpected(context: context)
                return
            }
            upstream?.close(promise: nil)
            upstream = nil
            state = .connecting(pending: [.head(forwarded)])
            openOrigin(destination, context: context)
        }
    }

    private func send(_ part: HTTPClientRequestPart) {
        switch state {
        case .connecting(var pending):
            pending.append(part)
            state = .connecting(pending: pending)
        case .forwarding:
            if case .end = part {
                upstream?.writeAndFlush(part, promise: nil)
            } else {
                upstream?.write(part, promise: nil)
            }
        default:
            break
        }
    }

    private func openOrigin(_ destination: ProxyDestination, context: ChannelHandlerContext) {
        gateway.openUpstream(to: destination, for: connection, awaitExitStatus: false).flatMap { channel in
            channel.pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes).map { channel }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard context.channel.isActive, case .connecting(let pending) = self.state else {
                    channel.close(promise: nil)
                    return
                }
                do {
                    try channel.pipeline.syncOperations.addHandler(OriginResponseForwarder(frontend: self))
                } catch {
                    channel.close(promise: nil)
                    self.refuse(HTTPProxyRefusal(.badGateway, "cannot set up the upstream connection: \(error)"), context: context)
                    return
                }
                self.connection.markRelaying()
                self.upstream = channel
                self.upstreamDestination = destination
                self.state = .forwarding
                for part in pending { channel.write(part, promise: nil) }
                channel.flush()
                channel.read()
                self.sendContinueIfExpected(context: context)
                context.read()
            case .failure(let error):
                self.upstreamFailed(error, destination: destination, context: context)
            }
        }
    }

    /// The origin's own "100 Continue" is not passed on (NIO's client decoder drops 1xx);
    /// the proxy answers it as soon as the origin connection stands, so clients do not sit
    /// out their expect-timeout.
    private func sendContinueIfExpected(context: ChannelHandlerContext) {
        guard clientExpectsContinue else { return }
        clientExpectsContinue = false
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
    }

    private func openTunnel(to destination: ProxyDestination, context: ChannelHandlerContext) {
        gateway.openUpstream(to: destination, for: connection, awaitExitStatus: false).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                guard context.channel.isActive else {
                    upstream.close(promise: nil)
                    return
                }
                self.state = .tunnelling
                var head = HTTPResponseHead(version: .http1_1, status: .ok)
                head.headers.add(name: "Content-Length", value: "0")
                context.write(self.wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    self.switchToTunnel(context: context, upstream: upstream)
                }
            case .failure(let error):
                self.upstreamFailed(error, destination: destination, context: context)
            }
        }
    }

    /// Takes the HTTP handlers out of the client pipeline and relays raw bytes.
    private func switchToTunnel(context: ChannelHandlerContext, upstream: Channel) {
        let pipeline = context.channel.pipeline.syncOperations
        let channel = context.channel
        do {
            for name in [HandlerName.pipelining, HandlerName.errors, HandlerName.idle, HandlerName.idleCloser, HandlerName.encoder] {
                pipeline.removeHandler(name: name, promise: nil)
            }
            pipeline.removeHandler(context: context, promise: nil)
            try RelayHandler.join(client: channel, upstream: upstream, connection: connection, idleSweep: gateway.idleSweep(on: channel.eventLoop))
            // Bytes the client sent after the CONNECT head come out of the decoder as it leaves.
            pipeline.removeHandler(name: HandlerName.decoder, promise: nil)
        } catch {
            connection.fail("failed", "cannot start the tunnel: \(error)")
            channel.close(promise: nil)
            upstream.close(promise: nil)
        }
    }

    private func upstreamFailed(_ error: Error, destination: ProxyDestination, context: ChannelHandlerContext) {
        let failure = UpstreamError.from(error, target: destination.description)
        let status: HTTPResponseStatus = switch failure.kind {
        case .refusedByPolicy: .forbidden
        case .timeout: .gatewayTimeout
        default: .badGateway
        }
        connection.fail(failure.outcome, failure.detail)
        refuse(HTTPProxyRefusal(status, failure.detail), context: context)
    }

    private func refuse(_ refusal: HTTPProxyRefusal, context: ChannelHandlerContext) {
        gateway.logger.info("HTTP proxy request refused", metadata: ["id": "\(connection.id)", "status": "\(refusal.status.code)", "reason": "\(refusal.reason)"])
        connection.fail("refused", refusal.description)   // an upstream failure recorded first stays
        state = .closing
        var head = HTTPResponseHead(version: .http1_1, status: refusal.status)
        let body = "\(refusal.status.code) \(refusal.status.reasonPhrase): \(refusal.reason)\n"
        head.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in refusal.headers { head.headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    // MARK: responses (called by the forwarder on the same loop)

    fileprivate func response(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        if case .closing = state { return }   // the client got its answer already
        switch part {
        case .head(var head):
            responseStarted = true
            upstreamReusable = head.isKeepAlive
            head.headers = HTTPProxyRequestInterpreter.stripHopByHop(head.headers)
            if !clientKeepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
            head.version = .http1_1
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body):
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers):
            state = .idle
            responseStarted = false
            if !upstreamReusable {
                upstream?.close(promise: nil)
                upstream = nil
            }
            let keepAlive = clientKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            if keepAlive {
                let timeout = gateway.configuration.limits.handshakeTimeout
                headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                    if case .idle = self.state { context.close(promise: nil) }
                }
            }
        }
    }

    fileprivate func responseReadComplete() { context?.flush() }

    fileprivate var clientWritable: Bool { context?.channel.isWritable ?? false }

    fileprivate func upstreamWritable() {
        if case .forwarding = state { context?.read() }
    }

    fileprivate func upstreamClosed() {
        upstream = nil
        guard let context else { return }
        switch state {
        case .forwarding where !responseStarted:
            refuse(HTTPProxyRefusal(.badGateway, "the origin closed the connection without a response"), context: context)
        case .forwarding:
            connection.fail("failed", "the origin closed the connection mid-response")
            context.close(promise: nil)
        default:
            break
        }
    }

}

/// On an origin connection: hands response parts to the client's frontend, and reads only
/// while the client can take more.
private final class OriginResponseForwarder: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart

    private let frontend: HTTPProxyFrontend

    init(frontend: HTTPProxyFrontend) {
        self.frontend = frontend
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frontend.response(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        frontend.responseReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if frontend.clientWritable { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { frontend.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        frontend.upstreamClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // An origin that stops sending is done with this connection (the decoder has
            // already delivered the end of a response framed by the close).
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
