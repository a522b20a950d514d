import Logging
import NIOCore
import NIOPosix
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// Why a pool user operation failed.
public struct PoolUserError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        let name: String
        public static let noRegistrarReachable = Code(name: "no registrar reachable")
        public static let registrarTimeout = Code(name: "registrar did not answer in time")
        public static let unknownPoolHandle = Code(name: "unknown pool handle")
        public static let poolEmpty = Code(name: "pool has no usable pool element")
        public static let allPoolElementsFailed = Code(name: "every pool element tried failed")
        public static let registrarError = Code(name: "registrar reported an error")
        public static let shutDown = Code(name: "pool user shut down")
    }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { "\(code.name): \(detail)" }
}

/// A pool user (RFC 5351 §2.3): resolves pool handles through a registrar, caches the answer
/// for `staleCacheTimeout`, selects PEs locally by the pool's policy, reports PEs it could not
/// reach (Endpoint Unreachable), and connects with failover.
///
/// ```swift
/// let user = PoolUser(registrars: RegistrarList([try SocketAddress(ipAddress: "127.0.0.1", port: 3863)]))
/// let connection = try await user.connect(to: "EchoPool")   // tries PEs until one answers
/// print("connected to", connection.element.userTransport)
/// ```
public final class PoolUser: Service, Sendable {
    public let registrars: RegistrarList
    private let group: EventLoopGroup
    private let loop: EventLoop
    private let state: NIOLoopBoundBox<PoolUserDriver>
    private let logger: Logger

    /// - Parameters:
    ///   - registrars: the registrars to ask, in order (the next when one does not answer).
    ///   - staleCacheTimeout: how long a handle resolution is reused before asking again.
    ///   - requestTimeout: how long to wait for a registrar's answer before trying the next one.
    ///   - eventLoopGroup: where the user's associations and connections run.
    ///   - logger: where the user logs.
    ///   - seed: for the policies' random choices (tests; nil: random).
    public convenience init(registrars: RegistrarList, staleCacheTimeout: TimeAmount = .seconds(1), requestTimeout: TimeAmount = .seconds(2),
                            eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "edgepool.pu"),
                            seed: UInt64? = nil) {
        self.init(registrars: registrars, staleCacheTimeout: staleCacheTimeout, requestTimeout: requestTimeout, eventLoopGroup: eventLoopGroup,
                  logger: logger, seed: seed, connector: RegistrarConnections.connector(for: registrars))
    }

    /// With `connector` opening the registrar associations (tests pass EmbeddedChannels).
    init(registrars: RegistrarList, staleCacheTimeout: TimeAmount, requestTimeout: TimeAmount, eventLoopGroup: EventLoopGroup,
         logger: Logger, seed: UInt64?, connector: @escaping RegistrarConnector) {
        self.registrars = registrars
        self.group = eventLoopGroup
        self.loop = eventLoopGroup.next()
        self.logger = logger
        let state = NIOLoopBoundBox.makeBoxSendingValue(
            PoolUserDriver(loop: loop, registrars: registrars, cache: HandleResolutionCache(staleTimeout: staleCacheTimeout, seed: seed),
                           requestTimeout: requestTimeout, logger: logger, connector: connector),
            eventLoop: loop)
        self.state = state
        if let announce = registrars.announce {
            let loop = self.loop
            MulticastListener.serverAnnounces(announce, group: loop, logger: logger) { message, source in
                loop.execute { state.value.heard(message, from: source) }
            }.whenComplete { result in
                switch result {
                case .success(let listener): loop.execute { state.value.adopt(listener) }
                case .failure(let error): logger.error("cannot listen for server announces", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Asks a registrar for up to `maximumCount` PEs of the pool (nil: the registrar's default,
    /// 3), selected by the pool's policy there. Refreshes the cache.
    public func resolve(_ handle: PoolHandle, maximumCount: Int? = nil) async throws -> [PoolElementParameter] {
        let response = try await loop.flatSubmit {
            self.state.value.resolve(handle, maximumCount: maximumCount)
        }.get()
        if let error = response.error {
            throw PoolUserError(error.code == .unknownPoolHandle ? .unknownPoolHandle : .registrarError, "\(handle): \(error)")
        }
        return response.elements
    }

    /// One PE for a new session: from the cache while it is fresh (else resolved again),
    /// chosen locally by the pool's policy.
    public func select(_ handle: PoolHandle) async throws -> PoolElementParameter {
        try await loop.flatSubmit { self.state.value.select(handle) }.get()
    }

    /// Tells the registrar a PE could not be reached and drops it from the cache.
    public func reportUnreachable(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) async {
        try? await loop.submit { self.state.value.reportUnreachable(handle, identifier) }.get()
    }

    /// Connects to a PE of the pool over TCP/MPTCP, trying up to `attempts` PEs: a PE that
    /// does not accept is reported unreachable and the next one is tried.
    /// - Parameters:
    ///   - handle: the pool.
    ///   - attempts: PEs tried at most.
    ///   - transport: MPTCP (falls back to TCP when the PE's kernel has none) or TCP.
    ///   - timeout: for each connection attempt.
    ///   - eventLoop: the loop the channel lives on (default: one of the pool user's group);
    ///     a proxy passes its client's loop so that both channels share it.
    ///   - initializer: sets up each channel's pipeline before it connects.
    ///   - refusal: the caller's own rule for a PE's address (a proxy's destination rules): a
    ///     reason refuses it — not connected, not reported (the PE is not at fault), the next
    ///     one tried.
    public func connect(to handle: PoolHandle, attempts: Int = 3, transport: TransportProtocol = .mptcp,
                        timeout: TimeAmount = .seconds(2), eventLoop: EventLoop? = nil,
                        refusal: @escaping @Sendable (SocketAddress) -> String? = { _ in nil },
                        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) async throws -> PoolUserConnection {
        var failures: [String] = []
        for _ in 0..<max(attempts, 1) {
            let element: PoolElementParameter
            do {
                element = try await select(handle)
            } catch let error as PoolUserError where error.code == .poolEmpty && !failures.isEmpty {
                break
            }
            let address: SocketAddress
            do {
                address = try element.userTransport.socketAddress()
            } catch {
                failures.append("\(element.identifier) at \(element.userTransport): \(error)")
                continue
            }
            if let reason = refusal(address) {
                logger.notice("pool element refused by the caller's rules", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)",
                                                                                     "transport": "\(element.userTransport)", "reason": "\(reason)"])
                failures.append("\(element.identifier) at \(element.userTransport): refused: \(reason)")
                continue
            }
            do {
                let channel = try await StreamTransport.connect(to: address, transport: transport, group: eventLoop ?? group,
                                                                timeout: timeout, initializer: initializer).get()
                return PoolUserConnection(channel: channel, element: element, poolHandle: handle)
            } catch {
                logger.notice("pool element unreachable", metadata: ["pool": "\(handle)", "pe": "\(element.identifier)",
                                                                     "transport": "\(element.userTransport)", "error": "\(error)"])
                failures.append("\(element.identifier) at \(element.userTransport): \(error)")
                await reportUnreachable(handle, element.identifier)
            }
        }
        throw PoolUserError(.allPoolElementsFailed, "\(handle): " + failures.joined(separator: "; "))
    }

    /// As a `Service`: runs until graceful shutdown, then closes the registrar association
    /// (requests still outstanding fail with ``PoolUserError/Code/shutDown``).
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes the registrar association.
    public func shutdown() async {
        try? await loop.submit { self.state.value.shutdown() }.get()
    }
}

/// A connection from a pool user to a pool element.
public struct PoolUserConnection: Sendable {
    /// The connected channel (raw bytes: add your protocol's handlers).
    public var channel: Channel
    /// The PE it connects to.
    public var element: PoolElementParameter
    public var poolHandle: PoolHandle
}

/// The pool user's driver on its event loop: carries out ``PoolUserStateMachine``'s actions
/// (connects, writes, promises) and feeds it the association's events, with the loop's
/// clock (`loop.now`) for every input, so NIOEmbedded time drives it in tests.
final class PoolUserDriver {
    private let loop: EventLoop
    private let registrars: RegistrarList
    private var machine: PoolUserStateMachine
    private let connector: RegistrarConnector
    private var listener: MulticastListener?
    private let logger: Logger
    private var channels: [PoolUserStateMachine.AssociationID: Channel] = [:]
    private var promises: [PoolUserStateMachine.RequestID: EventLoopPromise<ASAPHandleResolutionResponse>] = [:]
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(loop: EventLoop, registrars: RegistrarList, cache: HandleResolutionCache, requestTimeout: TimeAmount, logger: Logger,
         connector: @escaping RegistrarConnector) {
        self.loop = loop
        self.registrars = registrars
        self.machine = PoolUserStateMachine(configuration: .init(requestTimeout: requestTimeout, listensForAnnounces: registrars.announce != nil),
                                            table: registrars.makeTable(), cache: cache)
        self.connector = connector
        self.logger = logger
    }

    func resolve(_ handle: PoolHandle, maximumCount: Int?) -> EventLoopFuture<ASAPHandleResolutionResponse> {
        let promise = loop.makePromise(of: ASAPHandleResolutionResponse.self)
        let (id, actions) = machine.resolve(handle, maximumCount: maximumCount, now: loop.now)
        promises[id] = promise
        perform(actions)
        return promise.futureResult
    }

    func heard(_ announce: ASAPServerAnnounce, from source: SocketAddress) {
        guard let address = IPAddress(source) else { return }
        perform(machine.heard(announce, from: address, now: loop.now))
    }

    func adopt(_ listener: MulticastListener) {
        if machine.isShutDown { listener.stop() } else { self.listener = listener }
    }

    func select(_ handle: PoolHandle) -> EventLoopFuture<PoolElementParameter> {
        let box = NIOLoopBound(self, eventLoop: loop)
        let fresh: EventLoopFuture<Void> = machine.isFresh(handle, now: loop.now)
            ? loop.makeSucceededVoidFuture()
            : resolve(handle, maximumCount: nil).flatMapThrowing { response in
                if let error = response.error {
                    throw PoolUserError(error.code == .unknownPoolHandle ? .unknownPoolHandle : .registrarError, "\(handle): \(error)")
                }
            }
        return fresh.flatMapThrowing {
            guard let element = box.value.machine.select(handle) else { throw PoolUserError(.poolEmpty, "\(handle)") }
            return element
        }
    }

    func reportUnreachable(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) {
        perform(machine.reportUnreachable(handle, identifier, now: loop.now))
    }

    func shutdown() {
        listener?.stop()
        listener = nil
        perform(machine.shutdown())
    }

    // MARK: - Actions

    private func perform(_ actions: [PoolUserStateMachine.Action]) {
        for action in actions {
            switch action {
            case .connect(let id, let address):
                connect(id, to: address)
            case .send(let id, let message):
                channels[id]?.writeAndFlush(message, promise: nil)
            case .close(let id):
                channels.removeValue(forKey: id)?.close(promise: nil)
            case .succeed(let id, let response):
                promises.removeValue(forKey: id)?.succeed(response)
            case .fail(let id, let failure):
                promises.removeValue(forKey: id)?.fail(Self.error(failure))
            }
        }
        armTimer()
    }

    private func armTimer() {
        let deadline = machine.nextDeadline
        guard deadline != timerDeadline else { return }
        timer?.cancel()
        timer = nil
        timerDeadline = deadline
        guard let deadline else { return }
        let box = NIOLoopBound(self, eventLoop: loop)
        timer = loop.scheduleTask(deadline: deadline) {
            let core = box.value
            core.timerDeadline = nil
            core.timer = nil
            let actions = core.machine.timerFired(now: core.loop.now)
            if actions.contains(where: { if case .close = $0 { true } else { false } }) {
                core.logger.notice("registrar did not answer in time; trying the next")
            }
            core.perform(actions)
        }
    }

    private func connect(_ id: PoolUserStateMachine.AssociationID, to registrar: TransportAddress) {
        let address: SocketAddress
        do {
            address = try registrar.socketAddress()
        } catch {
            perform(machine.associationFailed(id, reason: "\(error)", now: loop.now))
            return
        }
        let box = NIOLoopBound(self, eventLoop: loop)
        connector(address, registrars.transport, loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addASAPCodec()
                try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<ASAPInbound>(
                    onMessage: { box.value.received($0, on: id) },
                    onClose: { box.value.closed(id) }))
            }
        }.hop(to: loop).whenComplete { result in
            let core = box.value
            switch result {
            case .success(let channel):
                core.channels[id] = channel
                core.perform(core.machine.associationEstablished(id, now: core.loop.now))
            case .failure(let error):
                core.logger.notice("registrar unreachable", metadata: ["registrar": "\(address)", "error": "\(error)"])
                core.perform(core.machine.associationFailed(id, reason: "\(error)", now: core.loop.now))
            }
        }
    }

    private func received(_ inbound: ASAPInbound, on id: PoolUserStateMachine.AssociationID) {
        guard case .message(let decoded) = inbound else {
            if case .malformed(let error) = inbound { logger.notice("malformed message from registrar", metadata: ["error": "\(error)"]) }
            return
        }
        switch decoded.message {
        case .handleResolutionResponse:
            perform(machine.received(decoded.message, on: id, now: loop.now))
        case .error(let error):
            logger.notice("registrar reported an error", metadata: ["error": "\(error.error)"])
        default:
            logger.debug("ignored message from registrar", metadata: ["type": "\(decoded.message.type)"])
        }
    }

    private func closed(_ id: PoolUserStateMachine.AssociationID) {
        guard channels.removeValue(forKey: id) != nil else { return }
        perform(machine.associationClosed(id, now: loop.now))
    }

    static func error(_ failure: PoolUserStateMachine.Failure) -> PoolUserError {
        switch failure {
        case .noRegistrarReachable(let detail): PoolUserError(.noRegistrarReachable, detail)
        case .registrarTimeout(let timeout): PoolUserError(.registrarTimeout, "no answer within \(timeout)")
        case .shutDown: PoolUserError(.shutDown, "shut down")
        }
    }
}
