import CalcApp
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// Configuration of a live CalcApp pool element.
public struct CalcAppPoolElementConfiguration: Sendable {
    public var server: CalcAppServerConfiguration
    public var poolHandle: PoolHandle
    /// The pool policy; its load value follows the PE's jobs / maxJobs.
    public var policy: PoolPolicy
    /// Where the service listens (port 0: any).
    public var listenAddress: SocketAddress
    public var transport: TransportProtocol = .mptcp
    public var registrars: RegistrarList
    /// One-way delay added by a relay in front of the service (the PE's network distance on a
    /// single machine); zero: none.
    public var delay: TimeAmount = .zero
    public var reregistrationInterval: TimeAmount = .seconds(30)
    /// Sessions per second a drain moves to other PEs (the daemon drains on SIGUSR1).
    public var drainRate = 10.0
    public var identifier: PoolElementIdentifier = .random()

    public init(server: CalcAppServerConfiguration, poolHandle: PoolHandle, policy: PoolPolicy, listenAddress: SocketAddress,
                registrars: RegistrarList) {
        self.server = server
        self.poolHandle = poolHandle
        self.policy = policy
        self.listenAddress = listenAddress
        self.registrars = registrars
    }
}

/// What a CalcApp PE did, for reports.
public struct CalcAppPoolElementStatistics: Sendable, Codable {
    public var identifier: String
    public var busySeconds: Double
    public var calculations: Double
    public var accepted: Int
    public var rejected: Int
    public var completed: Int
    /// Jobs a drain handed to other PEs.
    public var moved: Int
    public var activeJobs: Int
}

/// A live CalcApp PE: the processor-sharing service on TCP/MPTCP, registered in its pool with
/// its load (jobs / maxJobs) kept current, handing every PU a last cookie on graceful shutdown;
/// told to drain (``drain(sessionsPerSecond:)``), it moves its PUs to other PEs at a bounded
/// rate and then ends.
public final class CalcAppPoolElement: Service, Sendable {
    public let configuration: CalcAppPoolElementConfiguration
    private let loop: EventLoop
    private let driver: NIOLoopBoundBox<CalcAppServerDriver>
    private let logger: Logger
    private let ready: EventLoopPromise<SocketAddress>
    private let draining = NIOLockedValueBox(false)
    private let element = NIOLockedValueBox<PoolElement?>(nil)
    private let endpoints = NIOLockedValueBox<(listener: Channel?, relay: DelayRelay?)>((nil, nil))

    public init(configuration: CalcAppPoolElementConfiguration, eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "edgepool.calcapp.pe")) {
        self.configuration = configuration
        self.loop = eventLoopGroup.next()
        var logger = logger
        logger[metadataKey: "pe"] = "\(configuration.identifier)"
        self.logger = logger
        let loop = self.loop
        self.driver = NIOLoopBoundBox.makeBoxSendingValue(
            CalcAppServerDriver(loop: loop, server: CalcAppServer(configuration: configuration.server, now: loop.now), logger: logger),
            eventLoop: loop)
        self.ready = loop.makePromise()
    }

    /// Drains the PE: deregisters (and waits for the registrar's answer, so that no PU is sent
    /// here any more), stops accepting sessions, then moves the active jobs to other PEs,
    /// `sessionsPerSecond` at most, each with a last cookie (the PU resumes it elsewhere with
    /// a Cookie Echo). When the last job has left, `run()` returns. A second call changes the
    /// rate only.
    public func drain(sessionsPerSecond: Double) async {
        let driver = self.driver
        let first = draining.withLockedValue { already in
            defer { already = true }
            return !already
        }
        guard first else {
            loop.execute { driver.value.startDrain(sessionsPerSecond: sessionsPerSecond) }
            return
        }
        let active = (try? await statistics().activeJobs) ?? 0
        logger.notice("draining: deregistering, then moving the active jobs to other PEs",
                      metadata: ["active_jobs": "\(active)", "sessions_per_second": "\(sessionsPerSecond)"])
        await element.withLockedValue { $0 }?.deregister()
        endpoints.withLockedValue { $0 }.listener?.close(promise: nil)
        loop.execute { driver.value.startDrain(sessionsPerSecond: sessionsPerSecond) }
    }

    /// The address PUs reach (the relay's, if there is a delay), once the service listens.
    public var userAddress: SocketAddress { get async throws { try await ready.futureResult.get() } }

    public func statistics() async throws -> CalcAppPoolElementStatistics {
        let identifier = configuration.identifier
        return try await loop.submit { self.driver.value.statistics(identifier: identifier) }.get()
    }

    /// Drops everything at once, like a crash: no cookies, no deregistration; the service stops
    /// listening, its sessions break, its registrar association closes.
    public func abort() {
        element.withLockedValue { $0 }?.abort()
        let (listener, relay) = endpoints.withLockedValue { $0 }
        listener?.close(promise: nil)
        if let relay { loop.execute { relay.close() } }
        loop.execute { self.driver.value.abort() }
    }

    public func run() async throws {
        let driver = self.driver
        let listener = try await StreamTransport.bind(configuration.listenAddress, transport: configuration.transport, group: loop) { channel in
            channel.eventLoop.makeCompletedFuture { try CalcAppServerDriver.installSession(on: channel, driver: driver) }
        }.channel
        var relay: DelayRelay?
        var address = listener.localAddress!
        if configuration.delay > .zero {
            let front = try SocketAddress(ipAddress: address.ipAddress ?? "127.0.0.1", port: 0)
            relay = try await DelayRelay.start(on: front, to: address, delay: configuration.delay)
            address = relay!.localAddress!
        }
        endpoints.withLockedValue { $0 = (listener, relay) }
        var registration = PoolElementRegistration(poolHandle: configuration.poolHandle, identifier: configuration.identifier,
                                                   userTransport: TransportAddress(tcp: address)!, policy: configuration.policy)
        registration.reregistrationInterval = configuration.reregistrationInterval
        registration.registrationLife = configuration.reregistrationInterval * 3
        let element = PoolElement(registration: registration, registrars: configuration.registrars, logger: logger)
        self.element.withLockedValue { $0 = element }
        let policy = configuration.policy
        let drainedPromise = loop.makePromise(of: Void.self)
        try await loop.submit {
            driver.value.onLoad = { load in element.updatePolicy(policy.withLoad(PoolPolicy.load(fraction: load))) }
            driver.value.drained = drainedPromise
        }.get()
        ready.succeed(address)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await element.run() }
            // Runs until shutdown — a crashed (aborted) PE stays down until then, as a dead
            // process would, instead of ending its service group.
            let drained = drainedPromise.futureResult
            await withGracefulShutdownHandler {
                // Until a shutdown signal or the end of a drain, whichever comes first.
                await withTaskGroup(of: Void.self) { waiting in
                    waiting.addTask { try? await gracefulShutdown() }
                    waiting.addTask { try? await drained.get() }
                    await waiting.next()
                    waiting.cancelAll()
                }
            } onGracefulShutdown: {
                self.loop.execute {
                    driver.value.shutdown()
                    // Ends the wait above (a future's get() does not heed cancellation).
                    driver.value.drained?.succeed()
                    driver.value.drained = nil
                }
                listener.close(promise: nil)
            }
            try await group.waitForAll()
        }
        await relay?.stop()
        try? await loop.submit {
            driver.value.drained?.succeed()
            driver.value.drained = nil
        }.get()
    }
}

/// The PE's state on its event loop.
final class CalcAppServerDriver {
    private let loop: EventLoop
    private var server: CalcAppServer
    private var sessions: [SessionID: Channel] = [:]
    private var nextSession: UInt64 = 0
    private var timer: Scheduled<Void>?
    private let logger: Logger
    var onLoad: ((Double) -> Void)?
    /// Completed once a drain has moved (or seen finish) the last job, else when the PE stops.
    var drained: EventLoopPromise<Void>?
    private var aborted = false

    init(loop: EventLoop, server: CalcAppServer, logger: Logger) {
        self.loop = loop
        self.server = server
        self.logger = logger
    }

    /// Sets up an accepted PU session: the session codec, then the driver's callbacks.
    static func installSession(on channel: Channel, driver: NIOLoopBoundBox<CalcAppServerDriver>) throws {
        try channel.pipeline.syncOperations.addSessionCodec()
        let session = driver.value.opened(channel)
        try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<SessionInbound>(
            onMessage: { driver.value.received($0, on: session) },
            onClose: { driver.value.closed(session) }))
    }

    func opened(_ channel: Channel) -> SessionID {
        nextSession += 1
        let session = SessionID(nextSession)
        sessions[session] = channel
        return session
    }

    func received(_ inbound: SessionInbound, on session: SessionID) {
        switch inbound {
        case .message(let message): perform(server.received(message, on: session, now: loop.now))
        case .malformed(let error):
            logger.notice("malformed session message", metadata: ["session": "\(session)", "error": "\(error)"])
            sessions[session]?.close(promise: nil)
        }
    }

    func closed(_ session: SessionID) {
        guard sessions.removeValue(forKey: session) != nil else { return }
        perform(server.sessionClosed(session, now: loop.now))
    }

    func shutdown() { perform(server.shutdown(now: loop.now)) }

    func startDrain(sessionsPerSecond: Double) { perform(server.startDrain(sessionsPerSecond: sessionsPerSecond, now: loop.now)) }

    func abort() {
        aborted = true
        timer?.cancel()
        for channel in sessions.values { channel.close(promise: nil) }
        sessions = [:]
    }

    func statistics(identifier: PoolElementIdentifier) -> CalcAppPoolElementStatistics {
        perform(server.timerFired(now: loop.now))  // bring the accounting up to now (and send what is due)
        return CalcAppPoolElementStatistics(identifier: identifier.description, busySeconds: Double(server.busyTime.nanoseconds) / 1e9,
                                            calculations: server.calculationsDone, accepted: server.jobsAccepted, rejected: server.jobsRejected,
                                            completed: server.jobsCompleted, moved: server.jobsMoved, activeJobs: server.activeJobs)
    }

    private func perform(_ actions: [CalcAppServer.Action]) {
        guard !aborted else { return }
        for action in actions {
            switch action {
            case .send(let message, let session): sessions[session]?.writeAndFlush(message, promise: nil)
            case .close(let session): sessions[session]?.close(promise: nil)
            case .loadChanged(let load): onLoad?(load)
            case .event(let event): log(event)
            }
        }
        timer?.cancel()
        if let deadline = server.nextDeadline {
            let bound = NIOLoopBound(self, eventLoop: loop)
            timer = loop.scheduleTask(deadline: deadline) { bound.value.perform(bound.value.server.timerFired(now: bound.value.loop.now)) }
        }
    }

    private func log(_ event: CalcAppServerEvent) {
        switch event {
        case .accepted(let session, let job): logger.debug("accepted", metadata: ["session": "\(session)", "job": "\(job)"])
        case .resumed(let session, let job, let completed):
            logger.info("resumed a job from its cookie", metadata: ["session": "\(session)", "job": "\(job)", "completed": "\(completed)"])
        case .rejected(let session, let job): logger.debug("rejected: full", metadata: ["session": "\(session)", "job": "\(job)"])
        case .completed(let session, let job): logger.debug("completed", metadata: ["session": "\(session)", "job": "\(job)"])
        case .aborted(let session): logger.debug("aborted by the PU", metadata: ["session": "\(session)"])
        case .forgedCookie(let session, let why): logger.notice("refused a cookie", metadata: ["session": "\(session)", "reason": "\(why)"])
        case .invalidJob(let session, let why): logger.notice("refused a job", metadata: ["session": "\(session)", "reason": "\(why)"])
        case .protocolError(let session, let why): logger.notice("protocol error", metadata: ["session": "\(session)", "reason": "\(why)"])
        case .drainStarted(let active): logger.info("drain started", metadata: ["active_jobs": "\(active)"])
        case .moved(let session, let job, let completed):
            logger.info("moved a job to another PE (drain)", metadata: ["session": "\(session)", "job": "\(job)", "completed": "\(completed)"])
        case .drained(let moved):
            logger.notice("drained: no job left", metadata: ["moved": "\(moved)"])
            drained?.succeed()
            drained = nil
        }
    }
}
