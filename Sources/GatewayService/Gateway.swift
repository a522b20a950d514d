import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import RSerPool
import RSerPoolWire
import ServiceLifecycle

/// An MPTCP↔TCP gateway: SOCKS5 server, HTTP proxy, reverse proxy or one end of a gateway
/// pair, with per-connection MPTCP telemetry. A swift-service-lifecycle `Service`: on
/// graceful shutdown it stops accepting, lets open connections finish for
/// `limits.drainTimeout`, then closes the rest.
///
/// ```swift
/// var configuration = GatewayConfiguration(mode: .socks5, listen: [try SocketAddress(ipAddress: "0.0.0.0", port: 1080)])
/// configuration.connectionLogPath = "/var/log/edgepool/connections.jsonl"
/// let gateway = try Gateway(configuration: configuration, logger: logger)
/// try await ServiceGroup(services: [gateway], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public final class Gateway: Service, Sendable {
    public let configuration: GatewayConfiguration
    private let context: GatewayContext
    private let group: EventLoopGroup
    private let bound: EventLoopPromise<[SocketAddress]>
    private let logger: Logger

    public init(configuration: GatewayConfiguration, logger: Logger = Logger(label: "edgepool.gateway"),
                eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        if case .entry = configuration.mode, configuration.pairSecret == nil { throw GatewayConfigurationError("an entry gateway needs the pair secret") }
        if case .exit = configuration.mode, configuration.pairSecret == nil { throw GatewayConfigurationError("an exit gateway needs the pair secret") }
        if case .reverse(.addresses(let list)) = configuration.mode, list.isEmpty { throw GatewayConfigurationError("a reverse proxy needs at least one backend") }
        if let first = configuration.ignoredSettings.first {
            throw GatewayConfigurationError("\(configuration.mode.name) mode does not use \(first)")
        }
        let listenAddresses = configuration.listen.compactMap { $0.ipAddress.flatMap(IPAddress.init) }
        if let problem = ListenerExposure.openProxyProblem(listen: listenAddresses, clientChoosesDestination: configuration.mode.clientChoosesDestination,
                                                          authenticated: configuration.credentials != nil, clients: configuration.clients,
                                                          openProxyAllowed: configuration.openProxy) {
            throw GatewayConfigurationError("refusing to start: " + problem)
        }
        self.configuration = configuration
        self.logger = logger
        self.group = eventLoopGroup
        context = try GatewayContext(configuration: configuration, logger: logger, loops: Array(eventLoopGroup.makeIterator()))
        bound = eventLoopGroup.next().makePromise()
    }

    /// The addresses the listeners are bound to (known once `run` has bound them).
    public var listeningAddresses: [SocketAddress] {
        get async throws { try await bound.futureResult.get() }
    }

    /// Connections open now.
    public var openConnections: Int { context.registry.count }

    /// Calls `observer` with each finished connection's record (from any thread).
    public func onConnectionFinished(_ observer: @escaping @Sendable (ConnectionRecord) -> Void) {
        context.onFinished(observer)
    }

    public func run() async throws {
        var listeners: [Channel] = []
        do {
            // One listener per event loop on each address (SO_REUSEPORT): a connection stays on
            // the loop that accepted it, with its upstream, and never crosses threads.
            let loops = Array(group.makeIterator())
            for address in configuration.listen {
                var bindAddress = address
                for (index, loop) in loops.enumerated() {
                    let (channel, transport) = try await StreamTransport.bind(bindAddress, transport: configuration.listenTransport, group: loop,
                                                                             backlog: 4096, reusePort: true, serverInitializer: { [logger] server in
                                                                                 server.eventLoop.makeCompletedFuture {
                                                                                     try server.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger))
                                                                                 }
                                                                             }) { [context] channel in
                        channel.eventLoop.makeCompletedFuture { try Self.accept(channel, context: context) }
                    }
                    listeners.append(channel)
                    if index == 0, let bound = channel.localAddress {
                        bindAddress = bound   // port 0: the others join the port the first one got
                        logger.info("listening", metadata: ["address": "\(bound.endpointText)", "transport": "\(transport.rawValue)",
                                                            "mode": "\(configuration.mode.name)", "upstream": "\(configuration.upstreamTransport.rawValue)",
                                                            "loops": "\(loops.count)"])
                    }
                }
            }
        } catch {
            bound.fail(error)
            for listener in listeners { try? await listener.close() }
            throw error
        }
        var addresses: [SocketAddress] = []
        for address in listeners.compactMap(\.localAddress) where !addresses.contains(address) { addresses.append(address) }
        bound.succeed(addresses)
        if configuration.openProxy,
           ListenerExposure.openProxyProblem(listen: addresses.compactMap { $0.ipAddress.flatMap(IPAddress.init) },
                                             clientChoosesDestination: configuration.mode.clientChoosesDestination,
                                             authenticated: configuration.credentials != nil, clients: configuration.clients,
                                             openProxyAllowed: false) != nil {
            logger.warning("open proxy: anyone who reaches the listener may use it (no authentication, no client access list)",
                           metadata: ["listen": "\(addresses.map(\.endpointText).joined(separator: ", "))"])
        }
        let sampler = configuration.telemetryInterval > .zero
            ? SubflowSampler(interval: configuration.telemetryInterval, registry: context.registry, logger: logger) : nil
        sampler?.start()
        context.preconnector?.start()

        let servers = listeners
        await withGracefulShutdownHandler {
            for server in servers { try? await server.closeFuture.get() }
        } onGracefulShutdown: {
            for server in servers { server.close(promise: nil) }
        }
        context.preconnector?.stop()
        await drain()
        sampler?.stop()
        await context.poolUser?.shutdown()
        context.connectionLog?.flush()
        logger.info("stopped")
    }

    /// Waits for open connections to finish, then closes what is left.
    private func drain() async {
        let deadline = NIODeadline.now() + configuration.limits.drainTimeout
        if context.registry.count > 0 {
            logger.info("draining", metadata: ["connections": "\(context.registry.count)", "timeout": "\(configuration.limits.drainTimeout)"])
        }
        while context.registry.count > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let left = context.registry.all
        if !left.isEmpty { logger.notice("closing connections still open after the drain timeout", metadata: ["connections": "\(left.count)"]) }
        for entry in left {
            let box = entry.connection
            entry.loop.execute {
                box.value.fail("drained", "closed by gateway shutdown")
                box.value.client.close(promise: nil)
                box.value.upstream?.close(promise: nil)
            }
        }
        let closeDeadline = NIODeadline.now() + .seconds(2)
        while context.registry.count > 0 && NIODeadline.now() < closeDeadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Sets up an accepted client channel (on its loop).
    static func accept(_ channel: Channel, context: GatewayContext) throws {
        let configuration = context.configuration
        // The client's address, parsed once for the access list, the login blocks and the caps.
        let clientIP = channel.remoteAddress?.ipAddress.flatMap { IPAddress($0)?.unmappedIPv4 }
        if let refusal = context.refusal(ofClient: clientIP) {
            context.metrics.clientRefused(refusal.reason)
            context.logRefusal(refusal.reason, "client refused at accept", ["reason": "\(refusal.text)"])
            channel.close(promise: nil)
            return
        }
        let id = context.registry.makeID()
        let connection = GatewayConnection(id: id, mode: configuration.mode.name, client: channel,
                                           clientMayBeMPTCP: configuration.listenTransport == .mptcp,
                                           upstreamMayBeMPTCP: configuration.upstreamTransport == .mptcp) { connection, record in
            context.finished(connection, record)
        }
        switch context.registry.add(id, connection, client: clientIP, limit: configuration.limits.maximumConnections,
                                    perClientLimit: configuration.limits.maximumConnectionsPerClient) {
        case nil:
            break
        case .limit:
            context.metrics.refusedAtLimit.increment()
            context.logRefusal("limit", "connection limit reached; closing a new client", ["limit": "\(configuration.limits.maximumConnections)"])
            channel.close(promise: nil)
            return
        case .perClientLimit:
            context.metrics.clientRefused("per_client_limit")
            context.logRefusal("per_client_limit", "a client holds its maximum of connections; closing its new one",
                               ["client": "\(channel.remoteAddress?.endpointText ?? "?")", "limit": "\(configuration.limits.maximumConnectionsPerClient)"])
            channel.close(promise: nil)
            return
        }
        context.metrics.active.record(context.registry.count)
        channel.closeFuture.assumeIsolated().whenComplete { _ in connection.finishIfClosed() }
        try UpstreamConnector.prepare(channel, limits: configuration.limits)
        let pipeline = channel.pipeline.syncOperations
        if case .exit = configuration.mode, let tls = configuration.pairTLS {
            // The encrypted pair: TLS below the counter, so records count the carried bytes.
            try tls.addExitHandlers(to: pipeline)
        }
        try pipeline.addHandler(connection.clientCounter)
        switch configuration.mode {
        case .socks5, .entry(_, nil):
            try pipeline.addHandler(SOCKS5Frontend(connection: connection, gateway: context))
        case .httpProxy:
            // Named, so that a CONNECT tunnel can take exactly these out again.
            try pipeline.addHandler(HTTPResponseEncoder(), name: HTTPProxyFrontend.HandlerName.encoder)
            // The buffer holds at most an unfinished head (bodies are streamed out as parsed).
            try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes),
                                                         maximumBufferSize: ProxyLimits.maximumHTTPHeadLength + 4096),
                                    name: HTTPProxyFrontend.HandlerName.decoder)
            try pipeline.addHandler(HTTPServerPipelineHandler(), name: HTTPProxyFrontend.HandlerName.pipelining)
            try pipeline.addHandler(HTTPServerProtocolErrorHandler(), name: HTTPProxyFrontend.HandlerName.errors)
            try pipeline.addHandler(IdleStateHandler(allTimeout: configuration.limits.idleTimeout), name: HTTPProxyFrontend.HandlerName.idle)
            try pipeline.addHandler(HTTPProxyFrontend(connection: connection, gateway: context), name: HTTPProxyFrontend.HandlerName.frontend)
            try pipeline.addHandler(HTTPIdleCloser(connection: connection), name: HTTPProxyFrontend.HandlerName.idleCloser)
        case .reverse, .entry:
            try pipeline.addHandler(ForwardFrontend(connection: connection, gateway: context))
        case .exit:
            try pipeline.addHandler(PairExitFrontend(connection: connection, gateway: context))
        }
        connection.handshakeTimer = channel.eventLoop.assumeIsolated().scheduleTask(in: configuration.limits.handshakeTimeout) {
            guard channel.isActive else { return }
            connection.fail("timeout", "handshake not finished within \(configuration.limits.handshakeTimeout)")
            context.metrics.handshakeFailure("timeout")
            channel.close(promise: nil)
        }
    }
}

/// Closes an HTTP proxy client connection that stays idle (no bytes either way) too long.
private final class HTTPIdleCloser: ChannelInboundHandler {
    typealias InboundIn = Never
    private let connection: GatewayConnection
    init(connection: GatewayConnection) { self.connection = connection }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            connection.fail("timeout", "idle for longer than the idle timeout")
            context.close(promise: nil)
        }
    }
}

public struct GatewayConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
