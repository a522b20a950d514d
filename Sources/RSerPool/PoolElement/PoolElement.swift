import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// A pool element (RFC 5351 §2.2) as a `Service`: it registers `registration` with a
/// registrar from `registrars`, answers keep-alives, re-registers periodically and whenever
/// `updatePolicy` changes its load, moves to the next registrar when its association breaks,
/// and deregisters on graceful shutdown. The service itself (what PUs connect to) is yours:
/// start it, then register its address here.
///
/// ```swift
/// let pe = PoolElement(registration: PoolElementRegistration(
///         poolHandle: "EchoPool", userTransport: .tcp(.ipv4Loopback, port: 7000), policy: .leastUsed(load: 0)),
///     registrars: RegistrarList([try SocketAddress(ipAddress: "127.0.0.1", port: 3863)]))
/// try await pe.waitUntilRegistered()
/// pe.updatePolicy(.leastUsed(load: PoolPolicy.load(fraction: 0.5)))
/// ```
public final class PoolElement: Service, Sendable {
    public let registrars: RegistrarList
    public let acceptsTakeover: Bool
    private let userAddress: IPAddress
    private let loop: EventLoop
    private let driver: NIOLoopBoundBox<PoolElementDriver>
    private let logger: Logger
    private let stopped: EventLoopPromise<Void>
    private let firstRegistration: EventLoopPromise<Void>

    /// - Parameters:
    ///   - registration: the pool handle, the PE's identifier, its user transport and policy.
    ///   - registrars: the registrars to register with, in order (the next when one fails).
    ///   - acceptsTakeover: listen for ASAP associations from registrars, so that one
    ///     that takes over the home registrar can adopt this PE (its address goes into the
    ///     registration). Without it the PE re-registers by itself when its registrar is gone.
    ///   - eventLoopGroup: where the PE's association runs.
    ///   - logger: where the PE logs.
    public init(registration: PoolElementRegistration, registrars: RegistrarList, acceptsTakeover: Bool = true,
                eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "edgepool.pe")) {
        self.registrars = registrars
        self.acceptsTakeover = acceptsTakeover
        self.userAddress = registration.userTransport.addresses.first ?? .ipv4Any
        self.loop = eventLoopGroup.next()
        var logger = logger
        logger[metadataKey: "pool"] = "\(registration.poolHandle)"
        logger[metadataKey: "pe"] = "\(registration.identifier)"
        self.logger = logger
        self.stopped = loop.makePromise()
        self.firstRegistration = loop.makePromise()
        self.driver = NIOLoopBoundBox.makeBoxSendingValue(
            PoolElementDriver(loop: loop, registration: registration, registrars: registrars, logger: logger,
                              stopped: stopped, registered: firstRegistration, connector: RegistrarConnections.connector(for: registrars)),
            eventLoop: loop)
    }

    /// Waits until the first registration succeeded.
    public func waitUntilRegistered() async throws { try await firstRegistration.futureResult.get() }

    /// Whether the PE is registered right now.
    public var isRegistered: Bool {
        get async { (try? await loop.submit { self.driver.value.isRegistered }.get()) ?? false }
    }

    /// The registrar that is the PE's home now (`.unknown` before the first keep-alive).
    public var homeRegistrar: RegistrarIdentifier {
        get async { (try? await loop.submit { self.driver.value.homeRegistrar }.get()) ?? .unknown }
    }

    /// The policy the PE registers with now (with its current load).
    public var policy: PoolPolicy {
        get async { (try? await loop.submit { self.driver.value.policy }.get()) ?? PoolPolicy.roundRobin }
    }

    /// The load the PE registers now as a fraction (0…1), for the Least-Used policies; nil for others.
    public var loadFraction: Double? {
        get async {
            let policy = await self.policy
            return policy.type.isAdaptive ? Double(policy.load) / Double(UInt32.max) : nil
        }
    }

    /// Changes the policy values (e.g. load); the PE re-registers at once.
    public func updatePolicy(_ policy: PoolPolicy) {
        loop.execute { self.driver.value.updatePolicy(policy) }
    }

    /// Deregisters and stops (as on a graceful shutdown); `run()` then returns.
    public func stop() {
        loop.execute { self.driver.value.stop() }
    }

    /// Deregisters and stops like ``stop()``, and returns once the registrar has answered (or
    /// the deregistration gave up): from then on no pool user is sent here.
    public func deregister() async {
        stop()
        try? await stopped.futureResult.get()
    }

    /// Stops without deregistering and drops the association, as a crash would (for demos and tests).
    public func abort() {
        loop.execute { self.driver.value.abort() }
    }

    public func run() async throws {
        var listener: MulticastListener?
        if let announce = registrars.announce {
            let driver = self.driver, loop = self.loop
            listener = try await MulticastListener.serverAnnounces(announce, group: loop, logger: logger) { message, source in
                loop.execute { driver.value.heard(message, from: source) }
            }.get()
        }
        defer { listener?.stop() }
        var asapListener: Channel?
        let takeover = acceptsTakeover && (registrars.tls == nil || registrars.adoptionTLS != nil)
        if acceptsTakeover && !takeover {
            logger.notice("no certificate of this PE's own: it does not listen for a registrar's adoption after a takeover (it re-registers by itself)")
        }
        if takeover {
            let driver = self.driver
            let initializer = try await loop.submit { driver.value.makeListenerInitializer() }.get()
            asapListener = try await StreamTransport.bind(userAddress.socketAddress(port: 0), transport: registrars.transport,
                                                          group: loop, childInitializer: initializer).channel
            let transport = asapListener?.localAddress.flatMap { TransportAddress(tcp: $0) }
            logger.info("listening for a registrar's adoption after a takeover", metadata: [
                "address": "\(asapListener?.localAddress?.endpointDescription ?? "?")",
                "registrars": "\(registrars.adoptionIdentities.isEmpty ? "any the CA signed" : registrars.adoptionIdentities.sorted().joined(separator: ","))",
            ])
            try await loop.submit { driver.value.setASAPTransport(transport) }.get()
        }
        defer { asapListener?.close(promise: nil) }
        loop.execute { self.driver.value.start() }
        await withGracefulShutdownHandler {
            // Cancellation (not a graceful shutdown) drops everything at once.
            await withTaskCancellationHandler {
                try? await stopped.futureResult.get()
            } onCancel: {
                self.loop.execute { self.driver.value.abort() }
            }
        } onGracefulShutdown: {
            self.loop.execute { self.driver.value.stop() }
        }
    }
}

/// The pool element's state on its event loop.
final class PoolElementDriver {
    private let loop: EventLoop
    private var machine: PoolElementStateMachine
    private let registrars: RegistrarList
    private var table: RegistrarTable
    private var registrarIndex = 0
    private var channel: Channel?
    /// Associations open on the adoption listener.
    private var inboundAssociations = 0
    private var connectionGeneration = 0
    private var timer: Scheduled<Void>?
    private let logger: Logger
    private let stopped: EventLoopPromise<Void>
    private let registered: EventLoopPromise<Void>
    private var aborted = false
    private var everRegistered = false
    private let connector: RegistrarConnector

    init(loop: EventLoop, registration: PoolElementRegistration, registrars: RegistrarList, logger: Logger,
         stopped: EventLoopPromise<Void>, registered: EventLoopPromise<Void>, connector: @escaping RegistrarConnector = RegistrarConnections.sockets) {
        self.loop = loop
        self.connector = connector
        self.machine = PoolElementStateMachine(registration: registration)
        self.registrars = registrars
        self.table = registrars.makeTable()
        self.logger = logger
        self.stopped = stopped
        self.registered = registered
    }

    var isRegistered: Bool { machine.isRegistered }
    var homeRegistrar: RegistrarIdentifier { machine.homeRegistrar }
    var policy: PoolPolicy { machine.registration.policy }

    func start() { perform(machine.start()) }
    func stop() { perform(machine.stop(now: loop.now)) }
    func updatePolicy(_ policy: PoolPolicy) { perform(machine.policyChanged(policy, now: loop.now)) }

    func abort() {
        guard !aborted else { return }
        aborted = true
        timer?.cancel()
        channel?.close(promise: nil)
        channel = nil
        finish()
    }

    private var finished = false

    private func finish() {
        guard !finished else { return }
        finished = true
        if !everRegistered {
            everRegistered = true
            registered.fail(PoolElementStoppedError())
        }
        stopped.succeed(())
    }

    private func perform(_ actions: [PoolElementStateMachine.Action]) {
        guard !aborted else { return }
        for action in actions {
            switch action {
            case .connect: connect()
            case .send(let message): channel?.writeAndFlush(message, promise: nil)
            case .closeAssociation:
                channel?.close(promise: nil)
                channel = nil
                connectionGeneration += 1
            case .event(let event): record(event)
            }
        }
        timer?.cancel()
        if let deadline = machine.nextDeadline {
            let bound = NIOLoopBound(self, eventLoop: loop)
            timer = loop.scheduleTask(deadline: deadline) { bound.value.perform(bound.value.machine.timerFired(now: bound.value.loop.now)) }
        }
    }

    func heard(_ announce: ASAPServerAnnounce, from source: SocketAddress) {
        guard let address = IPAddress(source) else { return }
        if !table.announcedRegistrars(now: loop.now).contains(announce.registrar) {
            logger.info("registrar announced", metadata: ["registrar": "\(announce.registrar)", "from": "\(source.endpointDescription)"])
        }
        table.heard(announce, from: address, now: loop.now)
    }

    private func connect() {
        let candidates = table.socketAddresses(now: loop.now)
        guard !candidates.isEmpty else {
            logger.notice("no registrar known yet; waiting for one")
            perform(machine.associationClosed(now: loop.now))
            return
        }
        let address = candidates[registrarIndex % candidates.count]
        connectionGeneration += 1
        let generation = connectionGeneration
        let box = NIOLoopBound(self, eventLoop: loop)
        connector(address, registrars.transport, loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addASAPCodec()
                try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<ASAPInbound>(
                    onMessage: { box.value.received($0, generation: generation) },
                    onClose: { box.value.closed(generation: generation) },
                    // A refused TLS handshake (an expired or unknown certificate) must not look
                    // like a registrar that merely went away: say what the registrar said.
                    onError: { box.value.logger.notice("association to the registrar failed", metadata: ["registrar": "\(address.endpointDescription)", "error": "\($0)"]) }))
            }
        }.hop(to: loop).whenComplete { result in
            let driver = box.value
            switch result {
            case .success(let channel):
                guard generation == driver.connectionGeneration, !driver.aborted else { channel.close(promise: nil); return }
                driver.channel = channel
                driver.logger.debug("associated with registrar", metadata: ["registrar": "\(address.endpointDescription)"])
                driver.perform(driver.machine.associationEstablished(now: driver.loop.now))
            case .failure(let error):
                guard generation == driver.connectionGeneration else { return }
                driver.logger.notice("registrar unreachable", metadata: ["registrar": "\(address.endpointDescription)", "error": "\(error)"])
                driver.registrarIndex += 1
                driver.perform(driver.machine.associationClosed(now: driver.loop.now))
            }
        }
    }

    fileprivate func received(_ inbound: ASAPInbound, generation: Int) {
        guard generation == connectionGeneration else { return }
        switch inbound {
        case .message(let decoded):
            perform(machine.received(decoded.message, now: loop.now))
        case .malformed(let error):
            logger.notice("malformed message from registrar", metadata: ["error": "\(error)"])
            if let reply = ASAPErrorMessage(reporting: error) { channel?.writeAndFlush(ASAPMessage.error(reply), promise: nil) }
        }
    }

    /// A message on an association a registrar opened to us: a registrar that took over our
    /// home registrar adopts us with an Endpoint Keep-Alive carrying the home flag.
    fileprivate func receivedOnInbound(_ inbound: ASAPInbound, from inboundChannel: Channel) {
        if let current = channel, current === inboundChannel {
            received(inbound, generation: connectionGeneration)
            return
        }
        guard case .message(let decoded) = inbound, case .endpointKeepAlive(let keepAlive) = decoded.message, keepAlive.isHome,
              keepAlive.poolHandle == machine.registration.poolHandle, !machine.isStopped else {
            logger.debug("ignored a message on a registrar-opened association")
            return
        }
        let previous = channel
        connectionGeneration += 1  // the previous association's callbacks and any pending connect no longer count
        channel = inboundChannel
        previous?.close(promise: nil)
        logger.notice("adopted by a registrar that took over our home registrar", metadata: ["registrar": "\(keepAlive.registrar)"])
        perform(machine.received(decoded.message, now: loop.now))
    }

    fileprivate func inboundClosed(_ inboundChannel: Channel) {
        guard let current = channel, current === inboundChannel else { return }
        channel = nil
        connectionGeneration += 1
        registrarIndex += 1
        perform(machine.associationClosed(now: loop.now))
    }

    /// Associations a PE's adoption listener holds at once: only a registrar that took over
    /// the home one has business there, so a few are plenty; more are closed at accept.
    static let maximumInboundAssociations = 8

    /// What one inbound association may cost the PE: little, and not for long unless it is the
    /// registrar that adopted us (a stranger that opens one and says nothing is closed after
    /// `idleTimeout`).
    static let inboundLimits: AssociationLimits = {
        var limits = AssociationLimits()
        limits.messageRate = 100
        limits.messageBurst = 100
        limits.idleTimeout = .seconds(30)
        limits.socketSendBuffer = 32 * 1024
        limits.socketReceiveBuffer = 32 * 1024
        return limits
    }()

    /// Accepts associations from registrars (for adoption after a takeover).
    func makeListenerInitializer() -> @Sendable (Channel) -> EventLoopFuture<Void> {
        let box = NIOLoopBound(self, eventLoop: loop)
        return { channel in
            channel.eventLoop.makeCompletedFuture {
                let driver = box.value
                guard driver.inboundAssociations < Self.maximumInboundAssociations else {
                    driver.logger.notice("adoption listener: too many associations; closing a new one",
                                         metadata: ["peer": "\(channel.remoteAddress?.endpointDescription ?? "?")", "limit": "\(Self.maximumInboundAssociations)"])
                    channel.close(promise: nil)
                    return
                }
                driver.inboundAssociations += 1
                // Messages count only once the association may adopt: at once in plain TCP, after
                // the TLS handshake proved an allowed registrar identity otherwise.
                let admitted = NIOLoopBoundBox(driver.registrars.adoptionTLS == nil, eventLoop: channel.eventLoop)
                if let tls = driver.registrars.adoptionTLS {
                    // The adopting registrar's certificate must chain to the CA the PE trusts
                    // for its registrars and, with --registrar-identity, name one of them.
                    let allowed = driver.registrars.adoptionIdentities
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard { identity in
                        guard allowed.isEmpty || identity.map(allowed.contains) == true else {
                            box.value.logger.warning("adoption refused: the certificate is not one of this scope's registrars", metadata: [
                                "identity": "\(identity ?? "none")", "registrars": "\(allowed.sorted().joined(separator: ","))",
                                "peer": "\(channel.remoteAddress?.endpointDescription ?? "?")",
                            ])
                            channel.close(promise: nil)
                            return
                        }
                        admitted.value = true
                        box.value.logger.info("adoption association authenticated", metadata: ["identity": "\(identity ?? "none")"])
                    })
                }
                try channel.pipeline.syncOperations.addGuardedASAPCodec(limits: Self.inboundLimits, wireLimits: .default)
                try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<ASAPInbound>(
                    onMessage: { message in
                        guard admitted.value else { return }
                        box.value.receivedOnInbound(message, from: channel)
                    },
                    onClose: {
                        box.value.inboundAssociations -= 1
                        box.value.inboundClosed(channel)
                    },
                    onIdle: { if box.value.channel !== channel { channel.close(promise: nil) } }))
            }
        }
    }

    func setASAPTransport(_ transport: TransportAddress?) { machine.setASAPTransport(transport) }

    fileprivate func closed(generation: Int) {
        guard generation == connectionGeneration else { return }
        channel = nil
        registrarIndex += 1
        perform(machine.associationClosed(now: loop.now))
    }

    private func record(_ event: PoolElementEvent) {
        switch event {
        case .registered:
            logger.debug("registered")
            if !everRegistered {
                everRegistered = true
                logger.info("registered", metadata: ["transport": "\(machine.registration.userTransport)", "policy": "\(machine.registration.policy)"])
                registered.succeed(())
            }
        case .registrationRejected(let error):
            logger.error("registration rejected", metadata: ["error": "\(error)"])
        case .lostRegistrar:
            logger.notice("lost the registrar; registering elsewhere")
        case .responseTimeout:
            logger.notice("registrar did not answer in time; trying the next one")
            registrarIndex += 1
        case .homeRegistrar(let id):
            logger.info("home registrar", metadata: ["registrar": "\(id)"])
        case .deregistered:
            logger.info("deregistered")
        case .stopped:
            channel?.close(promise: nil)
            channel = nil
            timer?.cancel()
            finish()
        case .registrarReportedError(let error):
            logger.notice("registrar reported an error", metadata: ["error": "\(error)"])
        case .unexpectedMessage(let type):
            logger.debug("ignored message", metadata: ["type": "\(type)"])
        }
    }
}


/// The pool element stopped before it was ever registered.
public struct PoolElementStoppedError: Error, CustomStringConvertible {
    public var description: String { "the pool element stopped before it could register" }
}
