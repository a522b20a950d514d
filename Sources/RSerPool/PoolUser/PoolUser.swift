import Logging
import NIOCore
import NIOPosix
import RSerPoolCore
import RSerPoolWire

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
public final class PoolUser: Sendable {
    public let registrars: RegistrarList
    private let group: EventLoopGroup
    private let loop: EventLoop
    private let state: NIOLoopBoundBox<PoolUserCore>
    private let logger: Logger

    /// - Parameters:
    ///   - staleCacheTimeout: how long a handle resolution is reused before asking again.
    ///   - requestTimeout: how long to wait for a registrar's answer before trying the next one.
    public init(registrars: RegistrarList, staleCacheTimeout: TimeAmount = .seconds(1), requestTimeout: TimeAmount = .seconds(2),
                eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "edgepool.pu"),
                seed: UInt64? = nil) {
        self.registrars = registrars
        self.group = eventLoopGroup
        self.loop = eventLoopGroup.next()
        self.logger = logger
        let state = NIOLoopBoundBox.makeBoxSendingValue(
            PoolUserCore(loop: loop, registrars: registrars, cache: HandleResolutionCache(staleTimeout: staleCacheTimeout, seed: seed),
                         requestTimeout: requestTimeout, logger: logger),
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

/// The pool user's state on its event loop: the registrar association, the requests waiting
/// for an answer (the registrar answers in order), and the cache.
final class PoolUserCore {
    private let loop: EventLoop
    private let registrars: RegistrarList
    private var table: RegistrarTable
    private var listener: MulticastListener?
    private var waitingForRegistrar: [EventLoopPromise<Void>] = []
    private var registrarIndex = 0
    private var cache: HandleResolutionCache
    private let requestTimeout: TimeAmount
    private let logger: Logger
    private var channel: EventLoopFuture<Channel>?
    private var pending: [(handle: PoolHandle, promise: EventLoopPromise<ASAPHandleResolutionResponse>, timeout: Scheduled<Void>)] = []
    private var isShutDown = false

    init(loop: EventLoop, registrars: RegistrarList, cache: HandleResolutionCache, requestTimeout: TimeAmount, logger: Logger) {
        self.loop = loop
        self.registrars = registrars
        self.table = registrars.makeTable()
        self.cache = cache
        self.requestTimeout = requestTimeout
        self.logger = logger
    }

    func resolve(_ handle: PoolHandle, maximumCount: Int?) -> EventLoopFuture<ASAPHandleResolutionResponse> {
        resolve(handle, maximumCount: maximumCount, attemptsLeft: max(table.candidates(now: loop.now).count, 1))
    }

    func heard(_ announce: ASAPServerAnnounce, from source: SocketAddress) {
        guard let address = IPAddress(source) else { return }
        table.heard(announce, from: address, now: loop.now)
        let waiting = waitingForRegistrar
        waitingForRegistrar = []
        for waiter in waiting { waiter.succeed(()) }
    }

    /// With announces and no registrar known yet, waits (up to the announce timeout) for one.
    private func registrarKnown() -> EventLoopFuture<Void> {
        guard table.candidates(now: loop.now).isEmpty, registrars.announce != nil, !isShutDown else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        waitingForRegistrar.append(promise)
        loop.scheduleTask(in: registrars.announceTimeout) { promise.succeed(()) }
        return promise.futureResult
    }

    func adopt(_ listener: MulticastListener) {
        if isShutDown { listener.stop() } else { self.listener = listener }
    }

    private func resolve(_ handle: PoolHandle, maximumCount: Int?, attemptsLeft: Int) -> EventLoopFuture<ASAPHandleResolutionResponse> {
        guard !isShutDown else { return loop.makeFailedFuture(PoolUserError(.shutDown, "\(handle)")) }
        let request = ASAPMessage.handleResolution(ASAPHandleResolution(
            poolHandle: handle, option: maximumCount.map { HandleResolutionOption(items: UInt32(clamping: $0)) }))
        let box = NIOLoopBound(self, eventLoop: loop)
        return association().flatMap { channel in
            let core = box.value
            let promise = core.loop.makePromise(of: ASAPHandleResolutionResponse.self)
            let timeout = core.loop.scheduleTask(in: core.requestTimeout) {
                let core = box.value
                core.logger.notice("registrar did not answer; trying the next", metadata: ["pool": "\(handle)"])
                core.dropAssociation(PoolUserError(.registrarTimeout, "no answer within \(core.requestTimeout)"))
            }
            core.pending.append((handle, promise, timeout))
            channel.writeAndFlush(request, promise: nil)
            return promise.futureResult
        }.map { response in
            box.value.cache.store(response, now: .now())
            return response
        }.flatMapError { error in
            let core = box.value
            if let poolError = error as? PoolUserError, poolError.code == .shutDown { return core.loop.makeFailedFuture(error) }
            guard attemptsLeft > 1 else {
                return core.loop.makeFailedFuture(
                    (error as? PoolUserError) ?? PoolUserError(.noRegistrarReachable, "\(error)"))
            }
            return core.resolve(handle, maximumCount: maximumCount, attemptsLeft: attemptsLeft - 1)
        }
    }

    func select(_ handle: PoolHandle) -> EventLoopFuture<PoolElementParameter> {
        let box = NIOLoopBound(self, eventLoop: loop)
        let fresh: EventLoopFuture<Void> = cache.isFresh(handle, now: .now())
            ? loop.makeSucceededVoidFuture()
            : resolve(handle, maximumCount: nil).flatMapThrowing { response in
                if let error = response.error {
                    throw PoolUserError(error.code == .unknownPoolHandle ? .unknownPoolHandle : .registrarError, "\(handle): \(error)")
                }
            }
        return fresh.flatMapThrowing {
            guard let element = box.value.cache.select(handle).first else {
                throw PoolUserError(.poolEmpty, "\(handle)")
            }
            return element
        }
    }

    func reportUnreachable(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) {
        cache.remove(handle, identifier)
        let report = ASAPMessage.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: handle, identifier: identifier))
        association().whenSuccess { $0.writeAndFlush(report, promise: nil) }
    }

    func shutdown() {
        isShutDown = true
        listener?.stop()
        listener = nil
        dropAssociation(PoolUserError(.shutDown, "shut down"))
    }

    // MARK: - Association

    private func association() -> EventLoopFuture<Channel> {
        if let channel { return channel }
        guard !table.candidates(now: loop.now).isEmpty || registrars.announce == nil else {
            let box = NIOLoopBound(self, eventLoop: loop)
            return registrarKnown().flatMap { box.value.connectToRegistrar() }
        }
        return connectToRegistrar()
    }

    private func connectToRegistrar() -> EventLoopFuture<Channel> {
        if let channel { return channel }
        let candidates = table.socketAddresses(now: loop.now)
        guard !candidates.isEmpty else {
            return loop.makeFailedFuture(PoolUserError(.noRegistrarReachable,
                registrars.announce == nil ? "no registrar configured" : "no registrar configured or announced yet"))
        }
        let address = candidates[registrarIndex % candidates.count]
        let box = NIOLoopBound(self, eventLoop: loop)
        let future = StreamTransport.connect(to: address, transport: registrars.transport, group: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addASAPCodec()
                try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<ASAPInbound>(
                    onMessage: { box.value.received($0, from: channel) },
                    onClose: { box.value.associationClosed(channel) }))
            }
        }.hop(to: loop).flatMapErrorThrowing { error in
            let core = box.value
            core.logger.notice("registrar unreachable", metadata: ["registrar": "\(address)", "error": "\(error)"])
            core.channel = nil
            core.registrarIndex += 1
            throw PoolUserError(.noRegistrarReachable, "\(address): \(error)")
        }
        channel = future
        return future
    }

    private func received(_ inbound: ASAPInbound, from channel: Channel) {
        guard case .message(let decoded) = inbound else {
            if case .malformed(let error) = inbound { logger.notice("malformed message from registrar", metadata: ["error": "\(error)"]) }
            return
        }
        switch decoded.message {
        case .handleResolutionResponse(let response):
            guard !pending.isEmpty else { return }
            let request = pending.removeFirst()
            request.timeout.cancel()
            request.promise.succeed(response)
        case .error(let error):
            logger.notice("registrar reported an error", metadata: ["error": "\(error.error)"])
        default:
            logger.debug("ignored message from registrar", metadata: ["type": "\(decoded.message.type)"])
        }
    }

    private func associationClosed(_ closed: Channel) {
        dropAssociation(PoolUserError(.noRegistrarReachable, "association to the registrar closed"))
    }

    private func dropAssociation(_ error: PoolUserError) {
        let waiting = pending
        pending = []
        if let channel {
            registrarIndex += 1
            channel.whenSuccess { $0.close(promise: nil) }
        }
        channel = nil
        for request in waiting {
            request.timeout.cancel()
            request.promise.fail(error)
        }
    }
}
