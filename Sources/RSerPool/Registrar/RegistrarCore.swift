import Logging
import NIOCore
import RSerPoolCore
import RSerPoolWire

/// The registrar's state on its event loop: the state machine, the open associations and the
/// one timer. Every method runs on `loop`; it is never shared across threads.
final class RegistrarCore {
    let loop: EventLoop
    private(set) var machine: RegistrarStateMachine
    private var associations: [AssociationID: Channel] = [:]
    private var nextAssociationNumber: UInt64 = 0
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var metrics = RegistrarMetrics()
    let logger: Logger

    init(loop: EventLoop, configuration: RegistrarConfiguration, logger: Logger) {
        self.loop = loop
        self.machine = RegistrarStateMachine(configuration: configuration)
        self.logger = logger
    }

    var configuration: RegistrarConfiguration { machine.configuration }

    func associationOpened(_ channel: Channel) -> AssociationID {
        loop.preconditionInEventLoop()
        nextAssociationNumber += 1
        let id = AssociationID(nextAssociationNumber)
        associations[id] = channel
        metrics.associations.record(associations.count)
        logger.debug("association opened", metadata: ["association": "\(id)", "peer": "\(channel.remoteAddress?.endpointDescription ?? "?")"])
        return id
    }

    func associationClosed(_ id: AssociationID) {
        guard associations.removeValue(forKey: id) != nil else { return }
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
            logger.info("association failed", metadata: ["association": "\(id)", "error": "\(error)"])
        }
        associations[id]?.close(promise: nil)
    }

    func closeAll() {
        timer?.cancel()
        for channel in associations.values { channel.close(promise: nil) }
    }

    func timerFired() {
        timer = nil
        timerDeadline = nil
        perform(machine.timerFired(now: loop.now))
    }

    func snapshot() -> HandlespaceSnapshot {
        HandlespaceSnapshot(registrar: machine.identifier, handlespace: machine.handlespace)
    }

    // MARK: - Actions

    func perform(_ actions: [RegistrarStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let message, let id): send(message, to: id)
            case .close(let id, let reason):
                logger.info("closing association", metadata: ["association": "\(id)", "reason": "\(reason)"])
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
        timer = loop.scheduleTask(deadline: deadline) { [self] in self.timerFired() }
    }

    private func record(_ event: RegistrarEvent) {
        switch event {
        case .registered(let handle, let element, let isNew):
            if isNew {
                metrics.registrations.increment()
                logger.info("registered", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)",
                                                     "transport": "\(element.userTransport)", "policy": "\(element.policy)"])
            } else {
                metrics.reregistrations.increment()
                logger.trace("re-registered", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)", "policy": "\(element.policy)"])
            }
            updateGauges()
        case .registrationRejected(let handle, let id, let cause, let reason):
            metrics.rejected(cause)
            logger.notice("registration rejected", metadata: ["pool": "\(handle)", "pe": "\(id)", "cause": "\(cause)", "reason": "\(reason)"])
        case .deregistered(let handle, let id):
            metrics.deregistrations.increment()
            logger.info("deregistered", metadata: ["pool": "\(handle)", "pe": "\(id)"])
            updateGauges()
        case .deregistrationRejected(let handle, let id, let association):
            logger.notice("deregistration from a foreign association refused", metadata: ["pool": "\(handle)", "pe": "\(id)", "association": "\(association)"])
        case .removed(let handle, let id, let reason):
            metrics.removed(reason)
            logger.info("pool element removed", metadata: ["pool": "\(handle)", "pe": "\(id)", "reason": "\(reason.rawValue)"])
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
        case .unreachableReported(let handle, let id, let reports):
            metrics.unreachableReports.increment()
            logger.info("endpoint unreachable reported", metadata: ["pool": "\(handle)", "pe": "\(id)", "reports": "\(reports)"])
        case .protocolError(let error, let association):
            metrics.protocolErrors.increment()
            logger.notice("malformed message", metadata: ["association": "\(association)", "error": "\(error)",
                                                          "bytes": "\(hexString(error.bytes))"])
        case .unexpectedMessage(let type, let association):
            metrics.protocolErrors.increment()
            logger.notice("unexpected message", metadata: ["association": "\(association)", "type": "\(type)"])
        case .peerReportedError(let error, let association):
            logger.notice("peer reported an error", metadata: ["association": "\(association)", "error": "\(error)"])
        }
    }

    private func updateGauges() {
        metrics.poolElements.record(machine.handlespace.elementCount)
        metrics.pools.record(machine.handlespace.pools.count)
    }
}

/// A point-in-time copy of a registrar's handlespace, for `edgepool handlespace`.
public struct HandlespaceSnapshot: Sendable, Codable {
    public struct Element: Sendable, Codable {
        public var identifier: String
        public var home: String
        public var transport: String
        public var policy: String
        public var registrationLifeMilliseconds: Int32
        public var ageSeconds: Double
        public var selections: UInt64
        public var unreachableReports: Int
    }
    public struct PoolInfo: Sendable, Codable {
        public var handle: String
        public var policy: String
        public var elements: [Element]
    }
    public var registrar: String
    public var poolElementCount: Int
    public var pools: [PoolInfo]

    init(registrar: RegistrarIdentifier, handlespace: Handlespace) {
        let now = NIODeadline.now()  // snapshot ages: wall time is fine here
        self.registrar = registrar.description
        self.poolElementCount = handlespace.elementCount
        self.pools = handlespace.pools.values.sorted { $0.handle < $1.handle }.map { pool in
            PoolInfo(handle: pool.handle.description, policy: pool.policyType.description,
                     elements: pool.elements.sorted { $0.identifier < $1.identifier }.map { entry in
                         Element(identifier: entry.identifier.description, home: entry.owner.description,
                                 transport: entry.parameter.userTransport.description, policy: entry.parameter.policy.description,
                                 registrationLifeMilliseconds: entry.parameter.registrationLife,
                                 ageSeconds: Double((now - entry.registeredAt).nanoseconds) / 1e9,
                                 selections: entry.selectionCount, unreachableReports: entry.unreachableReports)
                     })
        }
    }
}
