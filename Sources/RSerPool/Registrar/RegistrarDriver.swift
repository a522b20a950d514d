import Logging
import NIOCore
import NIOSSL
import RSerPoolCore
import RSerPoolWire

/// The registrar's state on its event loop: the state machine, the open associations and the
/// one timer. Every method runs on `loop`; it is never shared across threads.
final class RegistrarDriver {
    let loop: EventLoop
    private(set) var machine: RegistrarStateMachine
    private var associations: [AssociationID: Channel] = [:]
    private var nextAssociationNumber: UInt64 = 0
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var metrics = RegistrarMetrics()
    let logger: Logger
    /// Peer registrars to keep an ENRP association with (retried while unreachable).
    private var staticPeers: [TransportAddress] = []
    /// ENRP transports being connected to, or connected to by us.
    private var outgoingPeers: [TransportAddress: AssociationID?] = [:]
    private var peerRetry: RepeatedTask?
    private let limits: AssociationLimits
    /// Open associations per remote address (bounded by `limits.maximumAssociationsPerAddress`).
    private var associationsPerAddress: [IPAddress: Int] = [:]
    private var addressOfAssociation: [AssociationID: IPAddress] = [:]
    /// Accepted associations whose TLS handshake has not completed yet (bounded by
    /// `limits.maximumConcurrentHandshakes`).
    private var handshaking: Set<AssociationID> = []
    /// Per-event log lines (registrations, removals, refusals, malformed input) are
    /// rate-limited per kind: a flood must not turn into a flood of logs.
    private var logThrottle = LogThrottle<String>(rate: 20, burst: 100)

    /// ENRP over TLS (nil: plain).
    private var peerTLS: PeerTLS?

    /// New certificates (SIGHUP): outgoing peer associations opened from now on use them.
    func usePeerTLS(_ tls: PeerTLS?) { peerTLS = tls }

    /// TLS toward the ASAP listeners of PEs this registrar adopts (nil: plain), and the
    /// handshake's time limit.
    private var adoptionTLS: (context: NIOSSLContext, timeout: TimeAmount)?
    func useAdoptionTLS(_ tls: (context: NIOSSLContext, timeout: TimeAmount)?) { adoptionTLS = tls }

    init(loop: EventLoop, configuration: RegistrarConfiguration, limits: AssociationLimits = AssociationLimits(), peerTLS: PeerTLS? = nil,
         adoptionTLS: (context: NIOSSLContext, timeout: TimeAmount)? = nil, logger: Logger) {
        self.loop = loop
        self.peerTLS = peerTLS
        self.adoptionTLS = adoptionTLS
        self.machine = RegistrarStateMachine(configuration: configuration)
        self.limits = limits
        self.logger = logger
    }

    /// Logs at `level` unless this kind of line is over its rate; says how many were left out.
    func log(_ level: Logger.Level, _ kind: String, _ message: Logger.Message, _ metadata: @autoclosure () -> Logger.Metadata = [:]) {
        guard logger.logLevel <= level, let suppressed = logThrottle.admit(kind, now: loop.now) else { return }
        var metadata = metadata()
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
    }

    /// Whether a newly accepted channel may stay: within the total and per-address caps.
    /// Closes it (and says why, rate-limited) if not.
    /// With `tls`, the association starts with a TLS handshake, which must also fit within
    /// the bound on concurrent handshakes.
    func admit(_ channel: Channel, tls: Bool = false) -> Bool {
        let address = channel.remoteAddress.flatMap(IPAddress.init)?.unmappedIPv4
        let refusal: (String, String)? = if associations.count >= limits.maximumAssociations {
            ("limit", "the registrar holds the maximum of \(limits.maximumAssociations) associations")
        } else if let address, associationsPerAddress[address, default: 0] >= limits.maximumAssociationsPerAddress {
            ("per_address_limit", "\(address) holds the maximum of \(limits.maximumAssociationsPerAddress) associations")
        } else if tls, handshaking.count >= limits.maximumConcurrentHandshakes {
            ("handshake_limit", "\(handshaking.count) TLS handshakes are under way, the maximum")
        } else {
            nil
        }
        guard let (reason, text) = refusal else { return true }
        metrics.associationRefused(reason)
        log(.warning, "refused-\(reason)", "association refused at accept", ["reason": "\(text)", "peer": "\(channel.remoteAddress?.endpointDescription ?? "?")"])
        channel.close(promise: nil)
        return false
    }

    /// The association guard closed an association, or found it idle.
    func guardEvent(_ event: AssociationGuardEvent, on id: AssociationID) {
        switch event {
        case .idle:
            guard machine.registrationCount(on: id) == 0, associations[id] != nil else { return }
            metrics.associationClosed(event.reason)
            log(.info, "guard-idle", "closing an idle association", ["association": "\(id)", "idle": "\(limits.idleTimeout)"])
            associations[id]?.close(promise: nil)
        case .partialMessageTimeout(let bytes):
            metrics.associationClosed(event.reason)
            log(.notice, "guard-partial", "closing an association: message not finished in time",
                ["association": "\(id)", "buffered_bytes": "\(bytes)", "timeout": "\(limits.partialMessageTimeout)"])
        case .notReading(let bytes):
            metrics.associationClosed(event.reason)
            log(.notice, "guard-not-reading", "closing an association that does not read its replies",
                ["association": "\(id)", "queued_bytes": "≥\(bytes)", "timeout": "\(limits.notReadingTimeout)"])
        }
    }

    var configuration: RegistrarConfiguration { machine.configuration }

    func associationOpened(_ channel: Channel) -> AssociationID {
        loop.preconditionInEventLoop()
        nextAssociationNumber += 1
        let id = AssociationID(nextAssociationNumber)
        associations[id] = channel
        if let address = channel.remoteAddress.flatMap(IPAddress.init)?.unmappedIPv4 {
            associationsPerAddress[address, default: 0] += 1
            addressOfAssociation[id] = address
        }
        metrics.associations.record(associations.count)
        logger.debug("association opened", metadata: ["association": "\(id)", "peer": "\(channel.remoteAddress?.endpointDescription ?? "?")"])
        return id
    }

    /// The association's TLS handshake began (it counts toward the concurrent-handshake bound
    /// until it completes or the association closes).
    func handshakeStarted(_ id: AssociationID) {
        handshaking.insert(id)
        metrics.handshakesUnderWay.record(handshaking.count)
    }

    private func handshakeEnded(_ id: AssociationID) {
        guard handshaking.remove(id) != nil else { return }
        metrics.handshakesUnderWay.record(handshaking.count)
    }

    /// The association's TLS handshake completed; `identity` is what the client's certificate
    /// names (nil: it presented none, which only a registrar without a CA allows).
    func associationAuthenticated(_ id: AssociationID, identity: String?) {
        handshakeEnded(id)
        guard associations[id] != nil else { return }
        metrics.tlsHandshakes.increment()
        guard let identity else { return }
        machine.associationAuthenticated(id, identity: identity)
        logger.debug("association authenticated", metadata: ["association": "\(id)", "identity": "\(identity)"])
    }

    /// A peer association's TLS handshake completed: its identity must be one of the scope's
    /// registrars, else it is closed. The state machine then binds the identity to the
    /// registrar identifier it claims.
    func peerAuthenticated(_ id: AssociationID, identity: String?) {
        handshakeEnded(id)
        guard let channel = associations[id], let peerTLS else { return }
        guard let identity, peerTLS.identities.contains(identity) else {
            metrics.associationRefused("peer_identity")
            log(.warning, "peer-identity", "ENRP peer refused: its certificate is not one of this scope's registrars",
                ["association": "\(id)", "identity": "\(identity ?? "none")", "registrars": "\(peerTLS.identities.sorted())"])
            channel.close(promise: nil)
            return
        }
        machine.associationAuthenticated(id, identity: identity)
        logger.debug("peer authenticated", metadata: ["association": "\(id)", "identity": "\(identity)"])
    }

    func associationClosed(_ id: AssociationID) {
        handshakeEnded(id)
        guard associations.removeValue(forKey: id) != nil else { return }
        if let address = addressOfAssociation.removeValue(forKey: id) {
            let left = associationsPerAddress[address, default: 1] - 1
            associationsPerAddress[address] = left > 0 ? left : nil
        }
        for (transport, association) in outgoingPeers where association == id { outgoingPeers[transport] = nil }
        metrics.associations.record(associations.count)
        logger.debug("association closed", metadata: ["association": "\(id)"])
        perform(machine.associationClosed(id))
    }

    func received(_ inbound: ASAPInbound, on id: AssociationID, peer: SocketAddress?) {
        switch inbound {
        case .message(let decoded):
            perform(machine.received(decoded.message, on: id, peerAddress: peer.flatMap(IPAddress.init), now: loop.now))
            if let report = decoded.unrecognizedParameterReport {
                logger.notice("unrecognized parameters reported", metadata: ["association": "\(id)", "count": "\(decoded.unrecognizedParameters.count)"])
                send(.error(report), to: id)
            }
        case .malformed(let error):
            perform(machine.receivedMalformed(error, on: id))
        }
    }

    /// A stream-level failure (impossible length, I/O error): answer if possible, then close.
    func streamFailed(_ id: AssociationID, error: Error) {
        if let wire = error as? RSerPoolWireError {
            perform(machine.receivedMalformed(wire, on: id))
        } else {
            log(.info, "failed", "association failed", ["association": "\(id)", "error": "\(error)"])
        }
        associations[id]?.close(promise: nil)
    }

    // MARK: - ENRP

    /// ENRP is on: where we listen, and whom to contact.
    func startPeering(enrpTransport: TransportAddress, staticPeers: [TransportAddress]) {
        self.staticPeers = staticPeers
        perform(machine.startPeering(enrpTransport: enrpTransport, staticPeers: staticPeers, now: loop.now))
        let bound = NIOLoopBound(self, eventLoop: loop)
        peerRetry = loop.scheduleRepeatedTask(initialDelay: configuration.peerHeartbeatInterval, delay: configuration.peerHeartbeatInterval) { _ in
            let core = bound.value
            for peer in core.staticPeers where core.outgoingPeers[peer] == nil { core.connectPeer(peer) }
        }
    }

    /// An ENRP association was created (accepted, or connecting).
    func peerAssociationOpened(_ channel: Channel) -> AssociationID {
        associationOpened(channel)
    }

    /// The ENRP association is active: introduce ourselves.
    func peerAssociationActive(_ id: AssociationID) {
        perform(machine.peerAssociationEstablished(id, now: loop.now))
    }

    /// A Presence heard on the ENRP multicast group.
    func peerAnnounced(_ message: ENRPMessage, from source: SocketAddress) {
        perform(machine.receivedPeerAnnouncement(message, from: IPAddress(source), now: loop.now))
    }

    func receivedPeer(_ inbound: ENRPInbound, on id: AssociationID) {
        switch inbound {
        case .message(let message): perform(machine.receivedPeer(message, on: id, now: loop.now))
        case .malformed(let error): perform(machine.receivedMalformed(error, on: id))
        }
    }

    private func connectPeer(_ transport: TransportAddress) {
        guard outgoingPeers[transport] == nil, let address = try? transport.socketAddress() else { return }
        outgoingPeers[transport] = .some(nil)
        let bound = NIOLoopBound(self, eventLoop: loop)
        let limits = configuration.wireLimits
        let peerTLS = self.peerTLS
        StreamTransport.connect(to: address, transport: .mptcp, group: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                let core = bound.value
                let id = core.peerAssociationOpened(channel)
                core.outgoingPeers[transport] = id
                if let peerTLS {
                    // The peer's certificate must name the address we connect to, and its
                    // identity must be one of the scope's registrars.
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: peerTLS.client, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard(timeout: peerTLS.handshakeTimeout) { identity in
                        bound.value.peerAuthenticated(id, identity: identity)
                    })
                }
                try channel.pipeline.syncOperations.addGuardedENRPCodec(limits: core.limits.forPeers, wireLimits: limits)
                try channel.pipeline.syncOperations.addHandler(RegistrarPeerHandler(core: core, association: id))
            }
        }.whenFailure { error in
            let core = bound.value
            core.outgoingPeers[transport] = nil
            core.logger.debug("peer unreachable", metadata: ["peer": "\(transport)", "error": "\(error)"])
        }
    }

    /// Opens an ASAP association to a PE taken over from a dead peer.
    private func adopt(_ handle: PoolHandle, _ element: PoolElementParameter) {
        guard let transport = element.asapTransport, let address = try? transport.socketAddress() else {
            perform(machine.adoptionFailed(handle: handle, identifier: element.identifier))
            return
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let limits = configuration.wireLimits
        // The association's id, set by the initializer, read when the connection is up.
        let opened = NIOLoopBoundBox<AssociationID?>.makeEmptyBox(eventLoop: loop)
        let tls = adoptionTLS
        StreamTransport.connect(to: address, transport: .mptcp, group: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                let id = bound.value.associationOpened(channel)
                if let tls {
                    // The PE's certificate must chain to the CA; the identity it names is then the
                    // association's, checked against the pool's authorization like a registration's.
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard(timeout: tls.timeout) { identity in
                        bound.value.adoptedPEAuthenticated(id, identity: identity, handle: handle, element: element)
                    })
                }
                try channel.pipeline.syncOperations.addGuardedASAPCodec(limits: bound.value.limits, wireLimits: limits)
                opened.value = id
                try channel.pipeline.syncOperations.addHandler(RegistrarAssociationHandler(core: bound.value, association: id))
            }
        }.hop(to: loop).whenComplete { result in
            let core = bound.value
            switch result {
            case .success:
                guard let id = opened.value else { return }
                core.perform(core.machine.adoptionAssociationEstablished(id, handle: handle, identifier: element.identifier, now: core.loop.now))
            case .failure(let error):
                core.logger.notice("taken-over PE unreachable", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)", "error": "\(error)"])
                core.perform(core.machine.adoptionFailed(handle: handle, identifier: element.identifier))
            }
        }
    }

    /// The adopted PE's TLS handshake is done: its identity becomes the association's; one the
    /// pool's authorization does not allow ends the adoption (the PE re-registers by itself).
    func adoptedPEAuthenticated(_ id: AssociationID, identity: String?, handle: PoolHandle, element: PoolElementParameter) {
        if let rules = machine.configuration.poolAuthorization, !rules.permits(identity, pool: handle) {
            logger.notice("a taken-over PE's certificate is not authorized for its pool: not adopted",
                          metadata: ["pool": "\(handle)", "pe": "\(element.identifier)", "identity": "\(identity ?? "none")"])
            associations[id]?.close(promise: nil)
            return
        }
        associationAuthenticated(id, identity: identity)
    }

    func closeAll() {
        peerRetry?.cancel()
        timer?.cancel()
        for channel in associations.values { channel.close(promise: nil) }
    }

    func timerFired() {
        timer = nil
        timerDeadline = nil
        perform(machine.timerFired(now: loop.now))
    }

    func snapshot() -> HandlespaceSnapshot {
        HandlespaceSnapshot(registrar: machine.identifier, handlespace: machine.handlespace,
                            peers: machine.peerStatus(now: loop.now).map { peer in
                                HandlespaceSnapshot.PeerInfo(identifier: peer.identifier.description,
                                                             transport: peer.server.map { "\($0.transport)" },
                                                             associations: peer.associations,
                                                             silentSeconds: Double(peer.silentFor.nanoseconds) / 1e9,
                                                             state: peer.takingOver ? "being taken over" : peer.awaitingReply ? "silent" : "up")
                            })
    }

    // MARK: - Actions

    func perform(_ actions: [RegistrarStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let message, let id): send(message, to: id)
            case .sendENRP(let message, let id): associations[id]?.writeAndFlush(message, promise: nil)
            case .connectPeer(let transport): connectPeer(transport)
            case .adopt(let handle, let element): adopt(handle, element)
            case .close(let id, let reason):
                log(.info, "closing", "closing association", ["association": "\(id)", "reason": "\(reason)"])
                associations[id]?.close(promise: nil)
            case .event(let event): record(event)
            }
        }
        rescheduleTimer()
    }

    private func send(_ message: ASAPMessage, to id: AssociationID) {
        associations[id]?.writeAndFlush(message, promise: nil)
    }

    private func rescheduleTimer() {
        guard let deadline = machine.nextDeadline else {
            timer?.cancel()
            timer = nil
            timerDeadline = nil
            return
        }
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let bound = NIOLoopBound(self, eventLoop: loop)
        timer = loop.scheduleTask(deadline: deadline) { bound.value.timerFired() }
    }

    private func record(_ event: RegistrarEvent) {
        switch event {
        case .registered(let handle, let element, let isNew):
            if isNew {
                metrics.registrations.increment()
                log(.info, "registered", "registered", ["pool": "\(handle)", "pe": "\(element.identifier)",
                                                     "transport": "\(element.userTransport)", "policy": "\(element.policy)"])
            } else {
                metrics.reregistrations.increment()
                logger.trace("re-registered", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)", "policy": "\(element.policy)"])
            }
            updateGauges()
        case .registrationRejected(let handle, let id, let cause, let reason):
            metrics.rejected(cause)
            log(.notice, "registration-rejected", "registration rejected", ["pool": "\(handle)", "pe": "\(id)", "cause": "\(cause)", "reason": "\(reason)"])
        case .deregistered(let handle, let id):
            metrics.deregistrations.increment()
            log(.info, "deregistered", "deregistered", ["pool": "\(handle)", "pe": "\(id)"])
            updateGauges()
        case .deregistrationRejected(let handle, let id, let association):
            log(.notice, "deregistration-refused", "deregistration from a foreign association refused", ["pool": "\(handle)", "pe": "\(id)", "association": "\(association)"])
        case .removed(let handle, let id, let reason):
            metrics.removed(reason)
            log(.info, "removed", "pool element removed", ["pool": "\(handle)", "pe": "\(id)", "reason": "\(reason.rawValue)"])
            updateGauges()
        case .resolved(let handle, let count):
            metrics.resolutions.increment()
            if count == 0 {
                metrics.emptyResolutions.increment()
                logger.debug("handle resolution for an unknown pool", metadata: ["pool": "\(handle)"])
            }
        case .keepAliveSent:
            metrics.keepAlivesSent.increment()
        case .unexpectedKeepAliveAck(let handle, let id):
            logger.debug("keep-alive ack for an unknown PE", metadata: ["pool": "\(handle)", "pe": "\(id)"])
        case .unreachableReportIgnored(let handle, let id, let association, let reason):
            metrics.ignoredUnreachableReports.increment()
            logger.debug("endpoint unreachable report ignored", metadata: ["pool": "\(handle)", "pe": "\(id)", "association": "\(association)", "reason": "\(reason)"])
        case .unreachableProbe(let handle, let id):
            log(.info, "probe", "probing a PE reported unreachable", ["pool": "\(handle)", "pe": "\(id)"])
        case .unreachableReported(let handle, let id, let reports):
            metrics.unreachableReports.increment()
            log(.info, "unreachable", "endpoint unreachable reported", ["pool": "\(handle)", "pe": "\(id)", "reports": "\(reports)"])
        case .protocolError(let error, let association):
            metrics.protocolErrors.increment()
            log(.notice, "malformed", "malformed message", ["association": "\(association)", "error": "\(error)",
                                                          "bytes": "\(hexString(error.bytes))"])
        case .unexpectedMessage(let type, let association):
            metrics.protocolErrors.increment()
            log(.notice, "unexpected", "unexpected message", ["association": "\(association)", "type": "\(type)"])
        case .peerReportedError(let error, let association):
            log(.notice, "peer-error", "peer reported an error", ["association": "\(association)", "error": "\(error)"])
        case .peerUp(let peer):
            metrics.peers.record(machine.peerStatus(now: loop.now).count)
            logger.info("peer registrar up", metadata: ["peer": "\(peer)"])
        case .peerAssociationLost(let peer):
            logger.info("association to peer closed", metadata: ["peer": "\(peer)"])
        case .peerSilent(let peer):
            logger.notice("peer registrar silent; asking for a reply", metadata: ["peer": "\(peer)"])
        case .peerRefused(let peer, let reason):
            metrics.protocolErrors.increment()
            log(.notice, "enrp-refused", "ENRP refused", ["peer": "\(peer)", "reason": "\(reason)"])
        case .learned(let handle, let element, let peer):
            logger.debug("learned from peer", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)", "peer": "\(peer)"])
            updateGauges()
        case .checksumMismatch(let peer, let local, let remote):
            metrics.checksumMismatches.increment()
            logger.info("checksum mismatch; resynchronising", metadata: ["peer": "\(peer)", "local": "\(local)", "remote": "\(remote)"])
        case .resynchronised(let peer, let elements, let removed):
            metrics.resynchronisations.increment()
            logger.info("handle table synchronised", metadata: ["peer": "\(peer)", "elements": "\(elements)", "removed": "\(removed)"])
            updateGauges()
        case .handleTableAbandoned(let peer, let reason):
            metrics.protocolErrors.increment()
            logger.notice("handle table download abandoned", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        case .takeoverStarted(let target):
            logger.notice("taking over a silent peer", metadata: ["target": "\(target)"])
        case .takeoverCancelled(let target, let reason):
            logger.notice("takeover cancelled", metadata: ["target": "\(target)", "reason": "\(reason)"])
        case .takeoverCompleted(let target, let elements):
            metrics.takeovers.increment()
            metrics.peers.record(machine.peerStatus(now: loop.now).count)
            logger.notice("took over", metadata: ["target": "\(target)", "elements": "\(elements)"])
        case .takenOverBy(let peer, let target, let elements):
            metrics.peers.record(machine.peerStatus(now: loop.now).count)
            logger.notice("peer took over", metadata: ["peer": "\(peer)", "target": "\(target)", "elements": "\(elements)"])
        case .adopted(let handle, let id):
            logger.info("adopting taken-over PE", metadata: ["pool": "\(handle)", "pe": "\(id)"])
        }
    }

    private func updateGauges() {
        metrics.poolElements.record(machine.handlespace.elementCount)
        metrics.pools.record(machine.handlespace.pools.count)
    }
}

/// Hands one ENRP association's messages to the registrar core.
final class RegistrarPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ENRPInbound
    private let core: RegistrarDriver
    private let association: AssociationID

    init(core: RegistrarDriver, association: AssociationID) {
        self.core = core
        self.association = association
    }

    func channelActive(context: ChannelHandlerContext) {
        core.peerAssociationActive(association)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receivedPeer(unwrapInboundIn(data), on: association)
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
