import Gateway
import NIOCore
import RSerPoolWire

/// The client side of a SOCKS5 gateway (and of an entry gateway without a fixed forward):
/// runs the handshake, opens the upstream, answers with the right reply code, then hands the
/// channel to the relay. For UDP ASSOCIATE it opens a `SOCKS5UDPRelay` and stays as the
/// control connection's handler: bytes the client sends there are discarded, and the
/// association ends when the client closes it.
final class SOCKS5Frontend: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes buffered during the handshake: no SOCKS5 message is longer than 1 + 1 + 255 + 1 + 255.
    static let maximumBufferedHandshakeBytes = 4096

    private enum State {
        /// Reading the client's greeting, authentication and request.
        case handshaking
        /// The request is being carried out (upstream connect or UDP relay); nothing more is read.
        case connecting
        /// A UDP association stands; this channel is only its control connection now.
        case associated
        /// Refused; closing.
        case refused
    }

    private var handshake: SOCKS5ServerHandshake
    private var buffered = ByteBuffer()
    private var state = State.handshaking
    private let connection: GatewayConnection
    private let gateway: GatewayContext

    init(connection: GatewayConnection, gateway: GatewayContext) {
        self.connection = connection
        self.gateway = gateway
        // UDP relaying is the SOCKS5 server's; an entry gateway carries TCP only.
        let udp = if case .direct = gateway.route { gateway.configuration.udpRelay } else { false }
        handshake = SOCKS5ServerHandshake(credentials: gateway.configuration.credentials, allowsUDP: udp)
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.inspectClient()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .associated else { return }   // nothing is relayed over the control connection
        var incoming = unwrapInboundIn(data)
        buffered.writeBuffer(&incoming)
        guard state == .handshaking else { return }
        guard buffered.readableBytes <= Self.maximumBufferedHandshakeBytes else {
            reject(context: context, reply: nil, reason: "handshake longer than \(Self.maximumBufferedHandshakeBytes) bytes", metric: "oversize")
            return
        }
        while true {
            switch handshake.process(&buffered) {
            case .needMoreData:
                return
            case .send(let bytes):
                context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            case .reject(let reply, let failure):
                if case .authenticationFailed = failure { gateway.authenticationFailed(from: context.remoteAddress) }
                reject(context: context, reply: reply, reason: "\(failure)", metric: "socks5")
                return
            case .connect(let destination, let user):
                state = .connecting
                connection.user = user
                connect(context: context, destination: destination)
                return
            case .associate(let requested, let user):
                state = .connecting
                connection.user = user
                associate(context: context, requested: requested)
                return
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .handshaking, .associated: context.read()
        case .connecting, .refused: break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch state {
            case .associated:
                context.close(promise: nil)   // the client ended the association
                return
            case .handshaking:
                connection.fail("failed", "client closed during the SOCKS5 handshake")
                context.close(promise: nil)
                return
            case .connecting, .refused:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func connect(context: ChannelHandlerContext, destination: ProxyDestination) {
        gateway.openUpstream(to: destination, for: connection, awaitExitStatus: gateway.route.carriesToExit).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                let bound = upstream.localAddress.flatMap { address -> ProxyDestination? in
                    guard let ip = address.ipAddress.flatMap({ IPAddress($0)?.unmappedIPv4 }), let port = address.port else { return nil }
                    return ProxyDestination(host: .address(ip), port: UInt16(port))
                }
                context.writeAndFlush(self.wrapOutboundOut(self.handshake.connected(boundTo: bound ?? ProxyDestination(host: .address(.v4(0)), port: 0))), promise: nil)
                RelayHandler.takeOver(from: context, upstream: upstream, connection: self.connection, clientEarlyData: self.buffered,
                                      idleSweep: self.gateway.idleSweep(on: context.eventLoop))
            case .failure(let error):
                let failure = UpstreamError.from(error, target: destination.description)
                self.connection.fail(failure.outcome, failure.detail)
                self.gateway.logger.info("SOCKS5 connect failed", metadata: ["id": "\(self.connection.id)", "destination": "\(destination)",
                                                                             "reply": "\(failure.socksReply)", "error": "\(failure.detail)"])
                context.writeAndFlush(self.wrapOutboundOut(self.handshake.connectFailed(failure.socksReply))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }

    private func associate(context: ChannelHandlerContext, requested: ProxyDestination) {
        SOCKS5UDPRelay.open(for: connection, requested: requested, gateway: gateway).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let relay):
                self.state = .associated
                self.connection.markRelaying()
                self.gateway.logger.debug("UDP association", metadata: ["id": "\(self.connection.id)", "relay": "\(relay)", "client": "\(context.remoteAddress?.endpointText ?? "?")"])
                context.writeAndFlush(self.wrapOutboundOut(self.handshake.connected(boundTo: relay)), promise: nil)
                context.read()
            case .failure(let error):
                let failure = UpstreamError.from(error, target: "UDP relay")
                self.connection.fail("failed", failure.detail)
                self.gateway.logger.info("SOCKS5 UDP ASSOCIATE failed", metadata: ["id": "\(self.connection.id)", "error": "\(failure.detail)"])
                context.writeAndFlush(self.wrapOutboundOut(self.handshake.connectFailed(.generalFailure))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }

    private func reject(context: ChannelHandlerContext, reply: ByteBuffer?, reason: String, metric: String) {
        connection.fail("refused", reason)
        gateway.metrics.handshakeFailure(metric)
        gateway.logger.info("SOCKS5 handshake refused", metadata: ["id": "\(connection.id)", "client": "\(context.remoteAddress?.endpointText ?? "?")",
                                                                  "reason": "\(reason)"])
        state = .refused   // read no more
        if let reply {
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
