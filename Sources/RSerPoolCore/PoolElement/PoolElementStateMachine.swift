import NIOCore
import RSerPoolWire

/// What a pool element registers and how it keeps the registration alive.
public struct PoolElementRegistration: Sendable, Hashable {
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    /// Where pool users reach the service. An unspecified address (0.0.0.0 / ::) asks the
    /// registrar to fill in the address the registration came from.
    public var userTransport: TransportAddress
    public var policy: PoolPolicy
    /// How often the PE re-registers (reference: 30 s).
    public var reregistrationInterval: TimeAmount = .seconds(30)
    /// How long a registration is valid without renewal (reference: 3 × the interval).
    public var registrationLife: TimeAmount = .seconds(90)
    /// How long to wait for a Registration/Deregistration Response before trying another PR.
    public var responseTimeout: TimeAmount = .seconds(5)
    /// How long to wait before connecting again after losing the registrar.
    public var reconnectDelay: TimeAmount = .milliseconds(500)
    /// Where registrars can open an ASAP association to this PE (to adopt it after a
    /// takeover, RFC 5353 §3.11); nil: the PE cannot be adopted and re-registers by itself.
    public var asapTransport: TransportAddress?

    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier = .random(),
                userTransport: TransportAddress, policy: PoolPolicy) {
        self.poolHandle = poolHandle
        self.identifier = identifier
        self.userTransport = userTransport
        self.policy = policy
    }

    var parameter: PoolElementParameter {
        PoolElementParameter(identifier: identifier, homeRegistrar: .unknown,
                             registrationLife: Int32(clamping: registrationLife.nanoseconds / 1_000_000),
                             userTransport: userTransport, policy: policy, asapTransport: asapTransport)
    }
}

/// The ASAP side of a pool element (RFC 5352 §3.1–3.4): register with a home PR, answer its
/// keep-alives, re-register periodically and on load changes, move to another PR when the
/// association breaks or a response times out, deregister on shutdown.
///
/// No I/O, no clock: methods take `now` and return actions.
public struct PoolElementStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Open an ASAP association to a registrar (the caller picks which one).
        case connect
        case send(ASAPMessage)
        /// Close the current association (the caller then reports `associationClosed`).
        case closeAssociation
        case event(PoolElementEvent)
    }

    private enum State: Sendable {
        case idle
        case waitingToConnect(until: NIODeadline)
        case connecting
        case registering(deadline: NIODeadline)
        case registered(renewAt: NIODeadline)
        case deregistering(deadline: NIODeadline)
        case stopped
    }

    public private(set) var registration: PoolElementRegistration
    private var state: State = .idle
    /// The registrar that acknowledged us as its PE (from a Keep-Alive), if known.
    public private(set) var homeRegistrar: RegistrarIdentifier = .unknown

    public init(registration: PoolElementRegistration) { self.registration = registration }

    public var isRegistered: Bool { if case .registered = state { true } else { false } }
    public var isStopped: Bool { if case .stopped = state { true } else { false } }

    public var nextDeadline: NIODeadline? {
        switch state {
        case .waitingToConnect(let d), .registering(let d), .registered(let d), .deregistering(let d): d
        case .idle, .connecting, .stopped: nil
        }
    }

    /// Sets where registrars can reach this PE for adoption (before `start`).
    public mutating func setASAPTransport(_ transport: TransportAddress?) {
        registration.asapTransport = transport
    }

    public mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        state = .connecting
        return [.connect]
    }

    /// The association to a registrar is up: register.
    public mutating func associationEstablished(now: NIODeadline) -> [Action] {
        switch state {
        case .connecting, .waitingToConnect:
            state = .registering(deadline: now + registration.responseTimeout)
            return [.send(.registration(ASAPRegistration(poolHandle: registration.poolHandle, poolElement: registration.parameter)))]
        case .stopped:
            return [.closeAssociation]
        default:
            return []
        }
    }

    /// The association failed or closed: try again (the caller picks the next registrar).
    public mutating func associationClosed(now: NIODeadline) -> [Action] {
        switch state {
        case .stopped, .idle: return []
        case .deregistering:
            state = .stopped
            return [.event(.stopped)]
        default:
            let wasRegistered = isRegistered
            state = .waitingToConnect(until: now + registration.reconnectDelay)
            homeRegistrar = .unknown
            return wasRegistered ? [.event(.lostRegistrar)] : []
        }
    }

    public mutating func received(_ message: ASAPMessage, now: NIODeadline) -> [Action] {
        switch message {
        case .registrationResponse(let response) where response.identifier == registration.identifier:
            guard case .registering = state else { return [] }
            if response.rejected || response.error != nil {
                let error = response.error ?? OperationError(.unspecified)
                state = .waitingToConnect(until: now + registration.reregistrationInterval)
                return [.closeAssociation, .event(.registrationRejected(error))]
            }
            state = .registered(renewAt: now + registration.reregistrationInterval)
            return [.event(.registered)]
        case .endpointKeepAlive(let keepAlive) where keepAlive.poolHandle == registration.poolHandle
                && (keepAlive.identifier == nil || keepAlive.identifier == registration.identifier):
            if case .stopped = state { return [] }
            if case .deregistering = state { return [] }
            var actions: [Action] = [.send(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(
                poolHandle: registration.poolHandle, identifier: registration.identifier)))]
            if keepAlive.isHome, !isRegistered {
                // Adopted by a registrar that took over our home registrar (RFC 5353 §3.11).
                state = .registered(renewAt: now + registration.reregistrationInterval)
                actions.append(.event(.registered))
            }
            if keepAlive.isHome || homeRegistrar == .unknown {
                if homeRegistrar != keepAlive.registrar { actions.append(.event(.homeRegistrar(keepAlive.registrar))) }
                homeRegistrar = keepAlive.registrar
            }
            return actions
        case .deregistrationResponse(let response) where response.identifier == registration.identifier:
            guard case .deregistering = state else { return [] }
            state = .stopped
            return [.closeAssociation, .event(.deregistered), .event(.stopped)]
        case .error(let error):
            if case .registering = state {
                state = .waitingToConnect(until: now + registration.reregistrationInterval)
                return [.closeAssociation, .event(.registrationRejected(error.error))]
            }
            return [.event(.registrarReportedError(error.error))]
        default:
            return [.event(.unexpectedMessage(message.type))]
        }
    }

    public mutating func timerFired(now: NIODeadline) -> [Action] {
        switch state {
        case .waitingToConnect(let until) where until <= now:
            state = .connecting
            return [.connect]
        case .registering(let deadline) where deadline <= now:
            state = .waitingToConnect(until: now)
            return [.closeAssociation, .event(.responseTimeout)]
        case .registered(let renewAt) where renewAt <= now:
            state = .registering(deadline: now + registration.responseTimeout)
            return [.send(.registration(ASAPRegistration(poolHandle: registration.poolHandle, poolElement: registration.parameter)))]
        case .deregistering(let deadline) where deadline <= now:
            state = .stopped
            return [.closeAssociation, .event(.stopped)]
        default:
            return []
        }
    }

    /// The service's policy values changed (e.g. its load): re-register at once so that the
    /// registrar selects by the current value (RFC 5352 §3.5).
    public mutating func policyChanged(_ policy: PoolPolicy, now: NIODeadline) -> [Action] {
        guard policy != registration.policy else { return [] }
        registration.policy = policy
        guard case .registered = state else { return [] }
        state = .registering(deadline: now + registration.responseTimeout)
        return [.send(.registration(ASAPRegistration(poolHandle: registration.poolHandle, poolElement: registration.parameter)))]
    }

    /// Graceful shutdown: deregister if registered, then stop.
    public mutating func stop(now: NIODeadline) -> [Action] {
        switch state {
        case .registered, .registering:
            state = .deregistering(deadline: now + registration.responseTimeout)
            return [.send(.deregistration(ASAPDeregistration(poolHandle: registration.poolHandle, identifier: registration.identifier)))]
        case .deregistering, .stopped:
            return []
        default:
            state = .stopped
            return [.closeAssociation, .event(.stopped)]
        }
    }
}

/// What happened to a pool element's registration.
public enum PoolElementEvent: Sendable, Equatable {
    case registered
    case registrationRejected(OperationError)
    case lostRegistrar
    case responseTimeout
    case homeRegistrar(RegistrarIdentifier)
    case deregistered
    case stopped
    case registrarReportedError(OperationError)
    case unexpectedMessage(ASAPMessageType)
}
