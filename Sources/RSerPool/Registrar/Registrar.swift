import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// Where and how a registrar listens, and what it announces.
public struct RegistrarServiceConfiguration: Sendable {
    /// The protocol behaviour (identifier, timers, limits).
    public var registrar: RegistrarConfiguration
    /// The ASAP listening addresses (IPv4 and/or IPv6). Port 0 picks a free port.
    public var listenAddresses: [SocketAddress]
    /// MPTCP (default, falls back to TCP) or TCP.
    public var transport: TransportProtocol = .mptcp
    /// Server Announces by UDP multicast; nil disables them (the default: PEs and PUs then use
    /// static registrar lists).
    public var announce: ServerAnnounceConfiguration?
    /// Where to listen for peer registrars (ENRP, RFC 5353); empty: no ENRP, a lone registrar.
    /// Listen on a concrete address: it is what peers learn to reach us at.
    public var enrpListenAddresses: [SocketAddress] = []
    /// Peer registrars' ENRP addresses to keep associations with.
    public var peers: [SocketAddress] = []
    /// Multicast Presence to find peers (239.0.0.51:9901); nil: static peers and peer lists only.
    public var enrpAnnounce: ServerAnnounceConfiguration?
    /// What one association may cost: bytes queued each way, work per turn and per second,
    /// timeouts, and how many associations (in all, per address) are accepted.
    public var associationLimits = AssociationLimits()
    /// ASAP over TLS on the listeners (``TLSFiles/serverContext()``); nil: plain TCP/MPTCP.
    public var tls: NIOSSLContext?
    /// Whether the TLS context requires client certificates (every association then has an
    /// identity; `registrar.poolAuthorization` names them).
    public var requiresClientCertificates = false
    /// How long a TLS handshake may take before the association is closed.
    public var tlsHandshakeTimeout = TLSFiles.handshakeTimeout
    /// ENRP over TLS with the peers' identities; nil: plain TCP/MPTCP.
    public var peerTLS: PeerTLS?
    /// The context for the ASAP associations this registrar opens itself — to adopt the PEs
    /// of a registrar it took over (``TLSFiles/clientContext(verifyingAddress:)`` without
    /// the address check: the PE's certificate must chain to the CA and, with
    /// `registrar.poolAuthorization`, name an identity allowed in the PE's pool); nil: plain.
    public var adoptionTLS: NIOSSLContext?
    /// The files `tls` and `peerTLS` were made from, read again by ``Registrar/reloadCertificates()``.
    public var tlsFiles: TLSFiles?

    public init(registrar: RegistrarConfiguration, listenAddresses: [SocketAddress]) {
        self.registrar = registrar
        self.listenAddresses = listenAddresses
    }
}

/// A pool registrar (RFC 5351 §2.1) as a swift-service-lifecycle `Service`: it accepts ASAP
/// associations from PEs and PUs over TCP/MPTCP, keeps the handlespace, monitors its PEs and
/// answers handle resolutions. It stops on graceful shutdown (SIGTERM/SIGINT in a
/// `ServiceGroup`), closing its listeners and associations.
///
/// ```swift
/// let registrar = Registrar(configuration: .init(
///     registrar: RegistrarConfiguration(identifier: .random()),
///     listenAddresses: [try SocketAddress(ipAddress: "0.0.0.0", port: 3863)]))
/// try await ServiceGroup(services: [registrar], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
public final class Registrar: Service, Sendable {
    public let configuration: RegistrarServiceConfiguration
    private let group: EventLoopGroup
    private let loop: EventLoop
    private let core: NIOLoopBoundBox<RegistrarDriver>
    /// The TLS contexts new associations get (replaced by ``reloadCertificates()``).
    private let contexts: NIOLockedValueBox<(asap: NIOSSLContext?, peer: PeerTLS?)>
    private let logger: Logger
    private let bound: EventLoopPromise<[SocketAddress]>
    private let enrpBound: EventLoopPromise<[SocketAddress]>

    public init(configuration: RegistrarServiceConfiguration, eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "edgepool.registrar")) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.loop = eventLoopGroup.next()
        var logger = logger
        logger[metadataKey: "registrar"] = "\(configuration.registrar.identifier)"
        self.logger = logger
        let loop = self.loop
        self.contexts = NIOLockedValueBox((configuration.tls, configuration.peerTLS))
        self.core = NIOLoopBoundBox.makeBoxSendingValue(RegistrarDriver(loop: loop, configuration: configuration.registrar, limits: configuration.associationLimits, peerTLS: configuration.peerTLS,
                                                                      adoptionTLS: configuration.adoptionTLS.map { ($0, configuration.tlsHandshakeTimeout) }, logger: logger), eventLoop: loop)
        self.bound = loop.makePromise()
        self.enrpBound = loop.makePromise()
    }

    /// The addresses the registrar listens on for peers (empty without ENRP).
    public var peerListeningAddresses: [SocketAddress] {
        get async throws { try await enrpBound.futureResult.get() }
    }

    /// The addresses the registrar listens on, once it does (port 0 resolved to the real port).
    public var listeningAddresses: [SocketAddress] {
        get async throws { try await bound.futureResult.get() }
    }

    /// A copy of the handlespace, for operators and tests.
    public func snapshot() async throws -> HandlespaceSnapshot {
        try await loop.submit { self.core.value.snapshot() }.get()
    }

    public func run() async throws {
        var servers: [Channel] = []
        var announcer: MulticastAnnouncer?
        var presenceAnnouncer: MulticastAnnouncer?
        var presenceListener: MulticastListener?
        do {
            for address in configuration.listenAddresses {
                let (channel, transport) = try await bindListener(address)
                servers.append(channel)
                logger.info("listening", metadata: ["address": "\(channel.localAddress?.endpointDescription ?? "?")", "transport": "\(transport.rawValue)"])
            }
            let addresses = servers.compactMap(\.localAddress)
            var enrpAddresses: [SocketAddress] = []
            for address in configuration.enrpListenAddresses {
                let (channel, transport) = try await bindPeerListener(address)
                servers.append(channel)
                if let local = channel.localAddress { enrpAddresses.append(local) }
                logger.info("listening for peers (ENRP)", metadata: ["address": "\(channel.localAddress?.endpointDescription ?? "?")", "transport": "\(transport.rawValue)"])
            }
            if let enrp = enrpAddresses.first.flatMap({ TransportAddress(tcp: $0) }) {
                let peers = configuration.peers.compactMap { TransportAddress(tcp: $0) }
                let core = self.core
                try await loop.submit { core.value.startPeering(enrpTransport: enrp, staticPeers: peers) }.get()
            }
            enrpBound.succeed(enrpAddresses)
            bound.succeed(addresses)
            if let announce = configuration.announce {
                let transports = addresses.compactMap { TransportAddress(tcp: $0) }
                let message = try await loop.submit { self.core.value.machine.serverAnnounce(transports: transports) }.get()
                let payload = message.encoded()
                let loop = self.loop
                announcer = try await MulticastAnnouncer.start(configuration: announce, group: group, logger: logger) {
                    loop.makeSucceededFuture(payload)
                }
            }
            if let enrpAnnounce = configuration.enrpAnnounce, !enrpAddresses.isEmpty {
                let core = self.core, loop = self.loop, logger = self.logger
                presenceAnnouncer = try await MulticastAnnouncer.start(configuration: enrpAnnounce, group: group, logger: logger) {
                    loop.submit { core.value.machine.presence(to: .unknown, replyRequired: false).encoded() }
                }
                presenceListener = try await MulticastListener.start(
                    AnnounceListening(group: enrpAnnounce.group, interface: enrpAnnounce.interface), group: loop, logger: logger
                ) { data, source in
                    guard let message = try? ENRPMessage.decode(frame: data) else {
                        logger.debug("ignored datagram on the ENRP group", metadata: ["from": "\(source.endpointDescription)"])
                        return
                    }
                    loop.execute { core.value.peerAnnounced(message, from: source) }
                }.get()
            }
        } catch {
            bound.fail(error)
            enrpBound.fail(error)
            for server in servers { try? await server.close() }
            throw error
        }

        let listeners = servers
        await withGracefulShutdownHandler {
            for server in listeners { try? await server.closeFuture.get() }
        } onGracefulShutdown: {
            for server in listeners { server.close(promise: nil) }
        }
        try? await announcer?.stop()
        try? await presenceAnnouncer?.stop()
        presenceListener?.stop()
        try? await loop.submit { self.core.value.closeAll() }.get()
        logger.info("stopped")
    }

    /// Reads the TLS certificate, key and CA files again (SIGHUP): associations opened from
    /// now on use them; open ones keep theirs. On any error nothing changes.
    public func reloadCertificates() throws {
        guard let files = configuration.tlsFiles else { throw ConfigurationError("this registrar does not use TLS: nothing to reload") }
        let asap = try files.serverContext()
        var peer = contexts.withLockedValue { $0.peer }
        if let old = peer {
            peer = PeerTLS(server: try files.serverContext(), client: try files.clientContext(), identities: old.identities, handshakeTimeout: old.handshakeTimeout)
        }
        contexts.withLockedValue { $0 = (asap, peer) }
        let adoption = configuration.adoptionTLS == nil ? nil : try files.clientContext(verifyingAddress: false)
        let core = self.core, timeout = configuration.tlsHandshakeTimeout
        loop.execute {
            core.value.usePeerTLS(peer)
            core.value.useAdoptionTLS(adoption.map { ($0, timeout) })
        }
    }

    private func bindPeerListener(_ address: SocketAddress) async throws -> (Channel, TransportProtocol) {
        let contexts = self.contexts
        return try await bindListener(address) { channel, core, limits, wireLimits in
            let peerTLS = contexts.withLockedValue { $0.peer }
            guard core.admit(channel, tls: peerTLS != nil) else { return }
            let id = core.peerAssociationOpened(channel)
            if let peerTLS {
                core.handshakeStarted(id)
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: peerTLS.server))
                let loopBound = NIOLoopBound(core, eventLoop: channel.eventLoop)
                try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard(timeout: peerTLS.handshakeTimeout) { identity in
                    loopBound.value.peerAuthenticated(id, identity: identity)
                })
            }
            try channel.pipeline.syncOperations.addGuardedENRPCodec(limits: limits.forPeers, wireLimits: wireLimits)
            try channel.pipeline.syncOperations.addHandler(RegistrarPeerHandler(core: core, association: id))
        }
    }

    private func bindListener(_ address: SocketAddress) async throws -> (Channel, TransportProtocol) {
        let contexts = self.contexts, handshakeTimeout = configuration.tlsHandshakeTimeout
        return try await bindListener(address) { channel, core, limits, wireLimits in
            let tls = contexts.withLockedValue { $0.asap }
            guard core.admit(channel, tls: tls != nil) else { return }
            let id = core.associationOpened(channel)
            if let tls {
                core.handshakeStarted(id)
                // TLS first: the guard closes a handshake that stalls, and hands the identity
                // the client's certificate proves to the registrar before any message arrives.
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                let loopBound = NIOLoopBound(core, eventLoop: channel.eventLoop)
                try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard(timeout: handshakeTimeout) { identity in
                    loopBound.value.associationAuthenticated(id, identity: identity)
                })
            }
            try channel.pipeline.syncOperations.addGuardedASAPCodec(limits: limits, wireLimits: wireLimits)
            try channel.pipeline.syncOperations.addHandler(RegistrarAssociationHandler(core: core, association: id))
        }
    }

    private func bindListener(
        _ address: SocketAddress, configure: @escaping @Sendable (Channel, RegistrarDriver, AssociationLimits, WireLimits) throws -> Void
    ) async throws -> (Channel, TransportProtocol) {
        let core = self.core
        let wireLimits = configuration.registrar.wireLimits
        let limits = configuration.associationLimits
        let logger = self.logger
        return try await StreamTransport.bind(address, transport: configuration.transport, group: loop, backlog: 1024,
                                              serverInitializer: { server in
                                                  server.eventLoop.makeCompletedFuture {
                                                      try server.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger))
                                                  }
                                              }) { channel in
            channel.eventLoop.makeCompletedFuture { try configure(channel, core.value, limits, wireLimits) }
        }
    }
}

/// Hands one association's decoded messages to the registrar core.
final class RegistrarAssociationHandler: ChannelInboundHandler {
    typealias InboundIn = ASAPInbound
    private let core: RegistrarDriver
    private let association: AssociationID
    private var peer: SocketAddress?

    init(core: RegistrarDriver, association: AssociationID) {
        self.core = core
        self.association = association
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = context.remoteAddress
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        peer = context.channel.remoteAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.received(unwrapInboundIn(data), on: association, peer: peer)
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.associationClosed(association)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        core.streamFailed(association, error: error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? AssociationGuardEvent {
            core.guardEvent(event, on: association)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    var text = ""
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xF)])
    }
    return text
}
