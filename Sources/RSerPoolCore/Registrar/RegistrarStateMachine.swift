import NIOCore
import RSerPoolWire

/// A pool registrar's protocol logic: the ASAP side (RFC 5352 §3: registration,
/// deregistration, handle resolution, keep-alive monitoring, unreachability reports,
/// registration-life expiry) and the ENRP side (RFC 5353: peers, handlespace
/// synchronisation, takeover; see `RegistrarStateMachine+ENRP.swift`).
///
/// It does no I/O and reads no clock: every event method takes `now` and returns the actions
/// the caller carries out.
public struct RegistrarStateMachine: Sendable {
    /// What the caller must do.
    public enum Action: Sendable {
        /// Send an ASAP message on an association.
        case send(ASAPMessage, to: AssociationID)
        /// Send an ENRP message on an association.
        case sendENRP(ENRPMessage, to: AssociationID)
        /// Open an ENRP association to a peer registrar (then report `peerAssociationEstablished`).
        case connectPeer(TransportAddress)
        /// Open an ASAP association to a PE taken over from a dead peer (then report
        /// `adoptionAssociationEstablished` or `adoptionFailed`).
        case adopt(PoolHandle, PoolElementParameter)
        case close(AssociationID, reason: String)
        case event(RegistrarEvent)
    }

    public let configuration: RegistrarConfiguration
    public internal(set) var handlespace = Handlespace()
    var monitor: [ElementKey: Monitoring] = [:]
    var byAssociation: [AssociationID: Set<ElementKey>] = [:]
    /// The identity each authenticated association proved (its TLS certificate's name).
    var identities: [AssociationID: String] = [:]
    /// The identity each peer registrar's identifier is bound to (the first that claimed it).
    var registrarIdentities: [RegistrarIdentifier: String] = [:]
    /// Associations that reported an own PE unreachable since it last answered a keep-alive.
    var unreachableReporters: [ElementKey: Set<AssociationID>] = [:]
    /// Per reporting association: how many Endpoint Unreachable reports it may still send.
    var unreachableReportBudgets: [AssociationID: TokenBucket] = [:]
    var timers = TimerQueue<TimerPayload>()
    var generator: SplitMix64
    var generationCounter: UInt64 = 0
    var peers = PeerTable()
    var takeovers: [RegistrarIdentifier: Takeover] = [:]
    /// Where this registrar listens for ENRP (sent in Presence and List Response).
    public internal(set) var enrpTransport: TransportAddress?
    var heartbeatScheduled = false
    /// The first peer met, from which the whole handlespace was downloaded at start.
    var mentor: RegistrarIdentifier?

    /// How a PE in the handlespace is watched.
    enum Monitoring: Sendable {
        /// Own PE, alive; next keep-alive due later.
        case idle(generation: UInt64)
        /// Own PE, keep-alive sent, ack awaited.
        case awaitingAck(generation: UInt64)
        /// A peer's PE: only its registration life is watched.
        case foreign(generation: UInt64)
        /// Taken over; the ASAP association to it is being opened.
        case adopting(generation: UInt64)
        var generation: UInt64 {
            switch self { case .idle(let g), .awaitingAck(let g), .foreign(let g), .adopting(let g): g }
        }
    }

    enum ElementTimer: Sendable { case keepAliveDue, keepAliveTimeout, expiry }
    enum TimerPayload: Sendable {
        case element(ElementKey, ElementTimer, generation: UInt64)
        case heartbeat
        case peerCheck(RegistrarIdentifier, generation: UInt64)
        case takeover(RegistrarIdentifier, generation: UInt64)
    }

    public init(configuration: RegistrarConfiguration, seed: UInt64? = nil) {
        self.configuration = configuration
        self.generator = seed.map(SplitMix64.init(seed:)) ?? SplitMix64()
    }

    /// The identifier this registrar puts into Keep-Alives, Announces and home-PR fields.
    public var identifier: RegistrarIdentifier { configuration.identifier }

    /// When `timerFired(now:)` must next be called, if any timer is pending.
    public var nextDeadline: NIODeadline? { timers.nextDeadline }

    /// PEs registered over an association.
    public func registrationCount(on association: AssociationID) -> Int { byAssociation[association]?.count ?? 0 }

    // MARK: - ASAP events

    /// An ASAP message arrived on an association. `peerAddress` is where the association comes
    /// from: it replaces an unspecified address (0.0.0.0 / ::) in a PE's transports.
    public mutating func received(_ message: ASAPMessage, on association: AssociationID, peerAddress: IPAddress?, now: NIODeadline) -> [Action] {
        switch message {
        case .registration(let registration):
            return register(registration, on: association, peerAddress: peerAddress, now: now)
        case .deregistration(let deregistration):
            return deregister(deregistration, on: association)
        case .handleResolution(let resolution):
            return resolve(resolution, on: association)
        case .endpointKeepAliveAck(let ack):
            return keepAliveAcknowledged(ack, on: association, now: now)
        case .endpointUnreachable(let report):
            return unreachable(report, on: association, now: now)
        case .error(let error):
            return [.event(.peerReportedError(error.error, association))]
        default:
            // A message a registrar never receives (responses, cookies, announces): report it.
            var info = ByteBuffer()
            info.writeASAPMessage(message)
            let error = OperationError(.unrecognizedMessage, information: Array(buffer: info.getSlice(at: 0, length: min(info.readableBytes, 1024))!))
            return [.send(.error(ASAPErrorMessage(error)), to: association),
                    .event(.unexpectedMessage(message.type, association))]
        }
    }

    /// A message could not be decoded: answer with ASAP Error where the protocol says so.
    public mutating func receivedMalformed(_ failure: RSerPoolWireError, on association: AssociationID) -> [Action] {
        var actions: [Action] = [.event(.protocolError(failure, association))]
        if let reply = ASAPErrorMessage(reporting: failure) {
            if peers.isPeerAssociation(association) {
                actions.append(.sendENRP(ENRPMessage(sender: identifier, receiver: peers.peer(of: association) ?? .unknown,
                                                     .error(reply.error)), to: association))
            } else {
                actions.append(.send(.error(reply), to: association))
            }
        }
        return actions
    }

    /// An association closed. PEs registered over an ASAP association are removed at once
    /// (a PE that is alive registers again over its next association); an ENRP association
    /// just leaves its peer's list of associations.
    /// An association's TLS handshake proved `identity`: its registrations are checked
    /// against `poolAuthorization` under that name.
    public mutating func associationAuthenticated(_ association: AssociationID, identity: String) {
        identities[association] = identity
    }

    /// The identity an association proved, if any.
    public func identity(of association: AssociationID) -> String? { identities[association] }

    public mutating func associationClosed(_ association: AssociationID) -> [Action] {
        identities[association] = nil
        if peers.isPeerAssociation(association) {
            let peer = peers.unbind(association)
            return peer.map { [.event(.peerAssociationLost($0))] } ?? []
        }
        unreachableReportBudgets[association] = nil
        guard let keys = byAssociation.removeValue(forKey: association) else { return [] }
        var actions: [Action] = []
        for key in keys.sorted(by: { ($0.handle, $0.identifier.rawValue) < ($1.handle, $1.identifier.rawValue) }) {
            guard let entry = handlespace.entry(key.handle, key.identifier), entry.association == association else { continue }
            actions += removeEntry(key, reason: .associationClosed)
        }
        return actions
    }

    /// Timers: keep-alives, keep-alive timeouts, registration lives, peer heartbeats and
    /// checks, takeover deadlines.
    public mutating func timerFired(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        while let payload = timers.popDue(now: now) {
            switch payload {
            case .element(let key, let kind, let generation):
                actions += elementTimer(key, kind, generation: generation, now: now)
            case .heartbeat:
                heartbeatScheduled = false
                actions += heartbeat(now: now)
            case .peerCheck(let peer, let generation):
                actions += checkPeer(peer, generation: generation, now: now)
            case .takeover(let target, let generation):
                actions += takeoverExpired(target, generation: generation, now: now)
            }
        }
        return actions
    }

    /// The Server Announce this registrar multicasts (RFC 5352 §3.6).
    public func serverAnnounce(transports: [TransportAddress]) -> ASAPMessage {
        .serverAnnounce(ASAPServerAnnounce(registrar: identifier, transports: transports))
    }

    // MARK: - ASAP handlers

    private mutating func register(_ registration: ASAPRegistration, on association: AssociationID,
                                   peerAddress: IPAddress?, now: NIODeadline) -> [Action] {
        let handle = registration.poolHandle
        var element = registration.poolElement
        let key = ElementKey(handle: handle, identifier: element.identifier)

        func reject(_ cause: ErrorCauseCode, _ reason: String) -> [Action] {
            let error = OperationError(cause)
            return [.send(.registrationResponse(ASAPRegistrationResponse(poolHandle: handle, identifier: element.identifier,
                                                                         rejected: true, error: error)), to: association),
                    .event(.registrationRejected(handle, element.identifier, cause, reason))]
        }

        guard handle.bytes.count <= configuration.maximumPoolHandleLength else {
            return reject(.invalidValues, "pool handle longer than \(configuration.maximumPoolHandleLength) bytes")
        }
        let identity = identities[association]
        if let authorization = configuration.poolAuthorization, !authorization.permits(identity, pool: handle) {
            return reject(.rejectedDueToSecurity, identity.map { "identity '\($0)' is not authorized for pool \(handle)" }
                          ?? "the association is not authenticated (TLS with a client certificate), and registrations need an authorized identity")
        }
        // Fill unspecified addresses with the association's source address.
        if let peerAddress {
            element.userTransport.addresses = element.userTransport.addresses.map { $0.isUnspecified ? peerAddress : $0 }
            if var asap = element.asapTransport {
                asap.addresses = asap.addresses.map { $0.isUnspecified ? peerAddress : $0 }
                element.asapTransport = asap
            }
        }
        // A PE registers its own address only (RFC 5355 §2.3: otherwise anyone could send a
        // pool's users, or the registrar's own adoption connects, to a host of their choice).
        let mayProxy = configuration.acceptsForeignAddresses || identity.map { configuration.proxyIdentities.contains($0) } == true
        if !mayProxy, let peerAddress {
            let own = peerAddress.unmappedIPv4
            let foreign = (element.userTransport.addresses + (element.asapTransport?.addresses ?? [])).filter { $0.unmappedIPv4 != own }
            if let first = foreign.first {
                return reject(.rejectedDueToSecurity, "transport address \(first) is not the address the registration came from (\(own))")
            }
        }
        element.homeRegistrar = identifier
        element.registrationLife = min(max(element.registrationLife, configuration.minimumRegistrationLife), configuration.maximumRegistrationLife)

        let existing = handlespace.entry(handle, element.identifier)
        if let existing {
            // The same PE re-registering (update, or moving here from another registrar), or a
            // different PE claiming its identifier. A PE belongs to the association that
            // registered it: while that association stands, no other may re-register (or
            // deregister) it, whatever transport it names. A PE known only from a peer (no
            // association here) may move here with the same transport.
            let samePE = existing.association == association
                || (existing.association == nil && existing.parameter.userTransport == element.userTransport)
            guard samePE else {
                return reject(.nonUniquePoolElementIdentifier, existing.association == nil
                              ? "identifier \(element.identifier) is taken by another PE"
                              : "identifier \(element.identifier) belongs to a PE registered over another association")
            }
        } else {
            guard handlespace.elementCount < configuration.maximumPoolElements else {
                return reject(.lackOfResources, "handlespace holds the maximum of \(configuration.maximumPoolElements) PEs")
            }
        }
        if existing?.association != association {
            guard registrationCount(on: association) < configuration.maximumPoolElementsPerAssociation else {
                return reject(.lackOfResources, "association \(association) registered the maximum of \(configuration.maximumPoolElementsPerAssociation) PEs")
            }
        }
        if case .rejected(let cause, let reason) = handlespace.validate(handle, element) {
            return reject(cause, reason)
        }

        if let old = existing?.association, old != association { byAssociation[old]?.remove(key) }
        let entry = PoolElementEntry(parameter: element, association: association, now: now)
        let outcome = handlespace.register(handle, entry)
        byAssociation[association, default: []].insert(key)
        watchOwned(key, expiresAt: entry.expiresAt, now: now)
        return [.send(.registrationResponse(ASAPRegistrationResponse(poolHandle: handle, identifier: element.identifier)), to: association),
                .event(.registered(handle, element, isNew: outcome == .added))]
            + propagate(.addPoolElement, handle, element)
    }

    private mutating func deregister(_ request: ASAPDeregistration, on association: AssociationID) -> [Action] {
        let key = ElementKey(handle: request.poolHandle, identifier: request.identifier)
        guard let entry = handlespace.entry(request.poolHandle, request.identifier) else {
            // Already gone: deregistration is idempotent.
            return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier)), to: association)]
        }
        guard entry.association == association else {
            let error = OperationError(.rejectedDueToSecurity)
            return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier, error: error)), to: association),
                    .event(.deregistrationRejected(request.poolHandle, request.identifier, association))]
        }
        return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier)), to: association)]
            + removeEntry(key, reason: nil)
            + [.event(.deregistered(request.poolHandle, request.identifier))]
    }

    private mutating func resolve(_ request: ASAPHandleResolution, on association: AssociationID) -> [Action] {
        let wanted = request.option.map { Int(min($0.items, UInt32(configuration.maximumHandleResolutionItems))) }
            ?? configuration.defaultHandleResolutionItems
        guard let selected = handlespace.select(request.poolHandle, count: wanted, using: &generator) else {
            let response = ASAPHandleResolutionResponse(poolHandle: request.poolHandle, error: OperationError(.unknownPoolHandle))
            return [.send(.handleResolutionResponse(response), to: association), .event(.resolved(request.poolHandle, count: 0))]
        }
        // No "overall policy" parameter: each PE carries its own policy with its values, and a
        // policy parameter without values would be malformed for the Least-Used family.
        // ASAP transports are registrar business (ENRP), not the PU's.
        let response = ASAPHandleResolutionResponse(poolHandle: request.poolHandle, elements: selected.map { entry in
            var parameter = entry.parameter
            parameter.asapTransport = nil
            return parameter
        })
        return [.send(.handleResolutionResponse(response), to: association), .event(.resolved(request.poolHandle, count: selected.count))]
    }

    private mutating func keepAliveAcknowledged(_ ack: ASAPEndpointKeepAliveAck, on association: AssociationID, now: NIODeadline) -> [Action] {
        let key = ElementKey(handle: ack.poolHandle, identifier: ack.identifier)
        guard let entry = handlespace.entry(ack.poolHandle, ack.identifier), entry.association == association else {
            return [.event(.unexpectedKeepAliveAck(ack.poolHandle, ack.identifier))]
        }
        handlespace.modify(ack.poolHandle, ack.identifier) { $0.unreachableReports = 0 }
        unreachableReporters[key] = nil
        watchOwned(key, expiresAt: entry.expiresAt, now: now)
        return []
    }

    /// An Endpoint Unreachable report (RFC 5352 §3.5). A report is a hint, not proof: each
    /// association counts once per PE and is rate-limited; when enough different associations
    /// agree, the home PR asks the PE itself (a keep-alive) and drops it only if it stays silent.
    private mutating func unreachable(_ report: ASAPEndpointUnreachable, on association: AssociationID, now: NIODeadline) -> [Action] {
        let key = ElementKey(handle: report.poolHandle, identifier: report.identifier)
        var budget = unreachableReportBudgets[association]
            ?? TokenBucket(rate: configuration.maximumUnreachableReportRate, burst: max(1, 2 * configuration.maximumUnreachableReportRate))
        let admitted = budget.take(now: now)
        unreachableReportBudgets[association] = budget
        guard admitted else { return [.event(.unreachableReportIgnored(report.poolHandle, report.identifier, association, "rate limit"))] }
        guard let entry = handlespace.entry(report.poolHandle, report.identifier) else { return [] }
        guard unreachableReporters[key, default: []].insert(association).inserted else {
            return [.event(.unreachableReportIgnored(report.poolHandle, report.identifier, association, "already reported by this association"))]
        }
        var reports = 0
        handlespace.modify(report.poolHandle, report.identifier) { entry in
            entry.unreachableReports += 1
            reports = entry.unreachableReports
        }
        var actions: [Action] = [.event(.unreachableReported(report.poolHandle, report.identifier, reports: reports))]
        // Only the home PR probes (and so may drop) a PE; others leave it to the owner's Handle Update.
        if reports >= configuration.maximumUnreachableReports, entry.owner == identifier,
           case .idle = monitor[key], let peAssociation = entry.association {
            let next = nextGeneration()
            monitor[key] = .awaitingAck(generation: next)
            timers.schedule(.element(key, .keepAliveTimeout, generation: next), at: now + configuration.keepAliveTimeout)
            timers.schedule(.element(key, .expiry, generation: next), at: entry.expiresAt)
            actions += [.send(.endpointKeepAlive(ASAPEndpointKeepAlive(registrar: identifier, poolHandle: key.handle, identifier: key.identifier)),
                              to: peAssociation),
                        .event(.keepAliveSent(key.handle, key.identifier)),
                        .event(.unreachableProbe(key.handle, key.identifier))]
        }
        return actions
    }

    // MARK: - Element bookkeeping

    private mutating func elementTimer(_ key: ElementKey, _ kind: ElementTimer, generation: UInt64, now: NIODeadline) -> [Action] {
        guard let state = monitor[key], state.generation == generation,
              let entry = handlespace.entry(key.handle, key.identifier) else { return [] }
        switch kind {
        case .keepAliveDue:
            guard case .idle = state, let association = entry.association else { return [] }
            let next = nextGeneration()
            monitor[key] = .awaitingAck(generation: next)
            timers.schedule(.element(key, .keepAliveTimeout, generation: next), at: now + configuration.keepAliveTimeout)
            timers.schedule(.element(key, .expiry, generation: next), at: entry.expiresAt)
            return [.send(.endpointKeepAlive(ASAPEndpointKeepAlive(registrar: identifier, poolHandle: key.handle, identifier: key.identifier)),
                          to: association),
                    .event(.keepAliveSent(key.handle, key.identifier))]
        case .keepAliveTimeout:
            switch state {
            case .awaitingAck, .adopting:
                // A probe that reports asked for, unanswered: the reports were right.
                let reported = unreachableReporters[key].map { $0.count >= configuration.maximumUnreachableReports } ?? false
                return removeEntry(key, reason: reported ? .unreachable : .keepAliveTimeout)
            default: return []
            }
        case .expiry:
            guard entry.expiresAt <= now else { return [] }
            return removeEntry(key, reason: .registrationLifeExpired)
        }
    }

    /// Starts (or restarts) keep-alive monitoring of an own PE.
    mutating func watchOwned(_ key: ElementKey, expiresAt: NIODeadline, now: NIODeadline) {
        let generation = nextGeneration()
        monitor[key] = .idle(generation: generation)
        timers.schedule(.element(key, .keepAliveDue, generation: generation), at: now + configuration.keepAliveInterval)
        timers.schedule(.element(key, .expiry, generation: generation), at: expiresAt)
    }

    /// Watches a peer's PE: it expires with its registration life unless refreshed.
    mutating func watchForeign(_ key: ElementKey, expiresAt: NIODeadline) {
        let generation = nextGeneration()
        monitor[key] = .foreign(generation: generation)
        timers.schedule(.element(key, .expiry, generation: generation), at: expiresAt)
    }

    /// Removes a PE; an own PE's removal goes to the peers as a Handle Update.
    mutating func removeEntry(_ key: ElementKey, reason: RegistrarEvent.RemovalReason?) -> [Action] {
        guard let entry = handlespace.remove(key.handle, key.identifier) else { return [] }
        if let association = entry.association {
            byAssociation[association]?.remove(key)
            if byAssociation[association]?.isEmpty == true { byAssociation[association] = nil }
        }
        monitor[key] = nil
        unreachableReporters[key] = nil
        var actions: [Action] = reason.map { [.event(.removed(key.handle, key.identifier, $0))] } ?? []
        if entry.owner == identifier {
            actions += propagate(.deletePoolElement, key.handle, entry.parameter)
        }
        return actions
    }

    mutating func nextGeneration() -> UInt64 {
        generationCounter += 1
        return generationCounter
    }
}

/// What happened in a registrar, for logs and metrics.
public enum RegistrarEvent: Sendable {
    public enum RemovalReason: String, Sendable {
        case associationClosed = "association closed"
        case keepAliveTimeout = "keep-alive timeout"
        case registrationLifeExpired = "registration life expired"
        case unreachable = "reported unreachable"
        case removedByPeer = "removed by its home registrar"
        case notInPeerTable = "no longer in its home registrar's table"
        case adoptionFailed = "unreachable after takeover"
    }
    case registered(PoolHandle, PoolElementParameter, isNew: Bool)
    case registrationRejected(PoolHandle, PoolElementIdentifier, ErrorCauseCode, String)
    case deregistered(PoolHandle, PoolElementIdentifier)
    case deregistrationRejected(PoolHandle, PoolElementIdentifier, AssociationID)
    case removed(PoolHandle, PoolElementIdentifier, RemovalReason)
    case resolved(PoolHandle, count: Int)
    case keepAliveSent(PoolHandle, PoolElementIdentifier)
    case unexpectedKeepAliveAck(PoolHandle, PoolElementIdentifier)
    case unreachableReported(PoolHandle, PoolElementIdentifier, reports: Int)
    /// A report that did not count (over the association's rate, or a repeat).
    case unreachableReportIgnored(PoolHandle, PoolElementIdentifier, AssociationID, String)
    /// Enough associations reported the PE: it is asked with a keep-alive.
    case unreachableProbe(PoolHandle, PoolElementIdentifier)
    case protocolError(RSerPoolWireError, AssociationID)
    case unexpectedMessage(ASAPMessageType, AssociationID)
    case peerReportedError(OperationError, AssociationID)
    // ENRP
    case peerUp(RegistrarIdentifier)
    case peerAssociationLost(RegistrarIdentifier)
    case peerSilent(RegistrarIdentifier)
    case peerRefused(RegistrarIdentifier, String)
    case learned(PoolHandle, PoolElementParameter, from: RegistrarIdentifier)
    case checksumMismatch(RegistrarIdentifier, local: UInt16, remote: UInt16)
    case resynchronised(RegistrarIdentifier, elements: Int, removed: Int)
    case handleTableAbandoned(RegistrarIdentifier, String)
    case takeoverStarted(RegistrarIdentifier)
    case takeoverCancelled(RegistrarIdentifier, String)
    case takeoverCompleted(RegistrarIdentifier, elements: Int)
    case takenOverBy(RegistrarIdentifier, target: RegistrarIdentifier, elements: Int)
    case adopted(PoolHandle, PoolElementIdentifier)
}
