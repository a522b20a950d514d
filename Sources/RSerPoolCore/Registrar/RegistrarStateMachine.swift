import NIOCore
import RSerPoolWire

/// The ASAP side of a pool registrar (RFC 5352 §3): registration, deregistration, handle
/// resolution, keep-alive monitoring, unreachability reports and registration-life expiry.
///
/// It does no I/O and reads no clock: every event method takes `now` and returns the actions
/// the caller carries out (send a message on an association, close one, record an event).
/// ENRP (registrar redundancy) builds on the same handlespace and ownership fields.
public struct RegistrarStateMachine: Sendable {
    /// What the caller must do.
    public enum Action: Sendable {
        case send(ASAPMessage, to: AssociationID)
        case close(AssociationID, reason: String)
        case event(RegistrarEvent)
    }

    public let configuration: RegistrarConfiguration
    public private(set) var handlespace = Handlespace()
    private var monitor: [Key: Monitoring] = [:]
    private var byAssociation: [AssociationID: Set<Key>] = [:]
    private var timers = TimerQueue<TimerPayload>()
    private var generator: SplitMix64

    private struct Key: Hashable, Sendable {
        var handle: PoolHandle
        var identifier: PoolElementIdentifier
    }

    private enum Monitoring: Sendable {
        case idle(generation: UInt64)
        case awaitingAck(generation: UInt64)
        var generation: UInt64 {
            switch self { case .idle(let g), .awaitingAck(let g): g }
        }
    }

    private enum TimerKind: Sendable { case keepAliveDue, keepAliveTimeout, expiry }
    private struct TimerPayload: Sendable {
        var key: Key
        var kind: TimerKind
        var generation: UInt64
    }
    private var generationCounter: UInt64 = 0

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

    // MARK: - Events

    /// A message arrived on an association. `peerAddress` is where the association comes
    /// from: it replaces an unspecified address (0.0.0.0 / ::) in a PE's user transport.
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
            return unreachable(report)
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
        if let reply = ASAPErrorMessage(reporting: failure) { actions.append(.send(.error(reply), to: association)) }
        return actions
    }

    /// The association closed (PE process died, network gone): its PEs are removed at once;
    /// a PE that is still alive re-registers over its next association.
    public mutating func associationClosed(_ association: AssociationID) -> [Action] {
        guard let keys = byAssociation.removeValue(forKey: association) else { return [] }
        var actions: [Action] = []
        for key in keys.sorted(by: { ($0.handle, $0.identifier.rawValue) < ($1.handle, $1.identifier.rawValue) }) {
            if handlespace.remove(key.handle, key.identifier) != nil {
                monitor[key] = nil
                actions.append(.event(.removed(key.handle, key.identifier, .associationClosed)))
            }
        }
        return actions
    }

    /// Timers: keep-alives to send, keep-alive timeouts, registration lives that ended.
    public mutating func timerFired(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        while let payload = timers.popDue(now: now) {
            guard let state = monitor[payload.key], state.generation == payload.generation,
                  let entry = handlespace.entry(payload.key.handle, payload.key.identifier) else { continue }
            switch payload.kind {
            case .keepAliveDue:
                guard case .idle = state, let association = entry.association else { continue }
                let generation = nextGeneration()
                monitor[payload.key] = .awaitingAck(generation: generation)
                timers.schedule(TimerPayload(key: payload.key, kind: .keepAliveTimeout, generation: generation),
                                at: now + configuration.keepAliveTimeout)
                actions.append(.send(.endpointKeepAlive(ASAPEndpointKeepAlive(
                    registrar: identifier, poolHandle: payload.key.handle, identifier: payload.key.identifier)), to: association))
                actions.append(.event(.keepAliveSent(payload.key.handle, payload.key.identifier)))
            case .keepAliveTimeout:
                guard case .awaitingAck = state else { continue }
                removeEntry(payload.key)
                actions.append(.event(.removed(payload.key.handle, payload.key.identifier, .keepAliveTimeout)))
            case .expiry:
                if entry.expiresAt <= now {
                    removeEntry(payload.key)
                    actions.append(.event(.removed(payload.key.handle, payload.key.identifier, .registrationLifeExpired)))
                }
            }
        }
        return actions
    }

    /// The Server Announce this registrar multicasts (RFC 5352 §3.6).
    public func serverAnnounce(transports: [TransportAddress]) -> ASAPMessage {
        .serverAnnounce(ASAPServerAnnounce(registrar: identifier, transports: transports))
    }

    // MARK: - Handlers

    private mutating func register(_ registration: ASAPRegistration, on association: AssociationID,
                                   peerAddress: IPAddress?, now: NIODeadline) -> [Action] {
        let handle = registration.poolHandle
        var element = registration.poolElement
        let key = Key(handle: handle, identifier: element.identifier)

        func reject(_ cause: ErrorCauseCode, _ reason: String) -> [Action] {
            let error = OperationError(cause)
            return [.send(.registrationResponse(ASAPRegistrationResponse(poolHandle: handle, identifier: element.identifier,
                                                                         rejected: true, error: error)), to: association),
                    .event(.registrationRejected(handle, element.identifier, cause, reason))]
        }

        guard handle.bytes.count <= configuration.maximumPoolHandleLength else {
            return reject(.invalidValues, "pool handle longer than \(configuration.maximumPoolHandleLength) bytes")
        }
        // Fill an unspecified address with the association's source address.
        if let peerAddress {
            element.userTransport.addresses = element.userTransport.addresses.map { $0.isUnspecified ? peerAddress : $0 }
        }
        element.homeRegistrar = identifier
        element.registrationLife = min(max(element.registrationLife, configuration.minimumRegistrationLife), configuration.maximumRegistrationLife)
        element.asapTransport = nil

        if let existing = handlespace.entry(handle, element.identifier) {
            // The same PE re-registering (update), or a different PE claiming its identifier.
            let samePE = existing.association == association || existing.parameter.userTransport == element.userTransport
            guard samePE else {
                return reject(.nonUniquePoolElementIdentifier, "identifier \(element.identifier) is taken by another PE")
            }
        } else {
            guard handlespace.elementCount < configuration.maximumPoolElements else {
                return reject(.lackOfResources, "handlespace holds the maximum of \(configuration.maximumPoolElements) PEs")
            }
            guard registrationCount(on: association) < configuration.maximumPoolElementsPerAssociation else {
                return reject(.lackOfResources, "association \(association) registered the maximum of \(configuration.maximumPoolElementsPerAssociation) PEs")
            }
        }
        if case .rejected(let cause, let reason) = handlespace.validate(handle, element) {
            return reject(cause, reason)
        }

        var entry = PoolElementEntry(parameter: element, association: association, now: now)
        if let old = handlespace.entry(handle, element.identifier), let oldAssociation = old.association, oldAssociation != association {
            byAssociation[oldAssociation]?.remove(key)
        }
        entry.unreachableReports = 0
        let outcome = handlespace.register(handle, entry)
        byAssociation[association, default: []].insert(key)
        let generation = nextGeneration()
        monitor[key] = .idle(generation: generation)
        timers.schedule(TimerPayload(key: key, kind: .keepAliveDue, generation: generation), at: now + configuration.keepAliveInterval)
        timers.schedule(TimerPayload(key: key, kind: .expiry, generation: generation), at: entry.expiresAt)
        return [.send(.registrationResponse(ASAPRegistrationResponse(poolHandle: handle, identifier: element.identifier)), to: association),
                .event(.registered(handle, element, isNew: outcome == .added))]
    }

    private mutating func deregister(_ request: ASAPDeregistration, on association: AssociationID) -> [Action] {
        let key = Key(handle: request.poolHandle, identifier: request.identifier)
        guard let entry = handlespace.entry(request.poolHandle, request.identifier) else {
            // Already gone: deregistration is idempotent.
            return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier)), to: association)]
        }
        guard entry.association == association else {
            let error = OperationError(.rejectedDueToSecurity)
            return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier, error: error)), to: association),
                    .event(.deregistrationRejected(request.poolHandle, request.identifier, association))]
        }
        removeEntry(key)
        return [.send(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: request.poolHandle, identifier: request.identifier)), to: association),
                .event(.deregistered(request.poolHandle, request.identifier))]
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
        let response = ASAPHandleResolutionResponse(poolHandle: request.poolHandle, elements: selected.map(\.parameter))
        return [.send(.handleResolutionResponse(response), to: association), .event(.resolved(request.poolHandle, count: selected.count))]
    }

    private mutating func keepAliveAcknowledged(_ ack: ASAPEndpointKeepAliveAck, on association: AssociationID, now: NIODeadline) -> [Action] {
        let key = Key(handle: ack.poolHandle, identifier: ack.identifier)
        guard let entry = handlespace.entry(ack.poolHandle, ack.identifier), entry.association == association else {
            return [.event(.unexpectedKeepAliveAck(ack.poolHandle, ack.identifier))]
        }
        handlespace.modify(ack.poolHandle, ack.identifier) { $0.unreachableReports = 0 }
        let generation = nextGeneration()
        monitor[key] = .idle(generation: generation)
        timers.schedule(TimerPayload(key: key, kind: .keepAliveDue, generation: generation), at: now + configuration.keepAliveInterval)
        timers.schedule(TimerPayload(key: key, kind: .expiry, generation: generation), at: entry.expiresAt)
        return []
    }

    private mutating func unreachable(_ report: ASAPEndpointUnreachable) -> [Action] {
        let key = Key(handle: report.poolHandle, identifier: report.identifier)
        guard handlespace.entry(report.poolHandle, report.identifier) != nil else { return [] }
        var reports = 0
        handlespace.modify(report.poolHandle, report.identifier) { entry in
            entry.unreachableReports += 1
            reports = entry.unreachableReports
        }
        var actions: [Action] = [.event(.unreachableReported(report.poolHandle, report.identifier, reports: reports))]
        if reports >= configuration.maximumUnreachableReports {
            removeEntry(key)
            actions.append(.event(.removed(report.poolHandle, report.identifier, .unreachable)))
        }
        return actions
    }

    private mutating func removeEntry(_ key: Key) {
        if let entry = handlespace.remove(key.handle, key.identifier), let association = entry.association {
            byAssociation[association]?.remove(key)
            if byAssociation[association]?.isEmpty == true { byAssociation[association] = nil }
        }
        monitor[key] = nil
    }

    private mutating func nextGeneration() -> UInt64 {
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
    case protocolError(RSerPoolWireError, AssociationID)
    case unexpectedMessage(ASAPMessageType, AssociationID)
    case peerReportedError(OperationError, AssociationID)
}
