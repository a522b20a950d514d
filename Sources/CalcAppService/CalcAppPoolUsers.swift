import CalcApp
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolCore
import RSerPoolWire

/// Live CalcApp pool users: each generates requests (sizes and inter-arrival times from the
/// scenario's distributions, seeded), queues them, and has them handled one at a time by the
/// PE the registrar selects (a fresh handle resolution per request, so the policy sees current
/// loads), with failover by cookie.
public final class CalcAppPoolUsers: CalcAppClientOwner {
    public struct Configuration: Sendable {
        public var users: Int
        public var poolHandle: PoolHandle
        public var registrars: RegistrarList
        public var requestSize: Distribution
        /// Seconds between requests of one user.
        public var interArrival: Distribution
        public var client = CalcAppClientConfiguration()
        public var transport: TransportProtocol = .mptcp
        public var seed: UInt64 = 1

        public init(users: Int, poolHandle: PoolHandle, registrars: RegistrarList, requestSize: Distribution, interArrival: Distribution) {
            self.users = users
            self.poolHandle = poolHandle
            self.registrars = registrars
            self.requestSize = requestSize
            self.interArrival = interArrival
        }

        /// - Throws: `ConfigurationError` (RSerPool) naming the setting.
        public func validate() throws {
            try ConfigurationError.check(users, atLeast: 1, "users")
            try ConfigurationError.check(requestSize.mean, atLeast: 1, "requestSize")
        }
    }

    /// What the users did.
    public struct Outcome: Sendable {
        public var records: [CalcAppJobRecord]
        public var submitted: Int
        public var rejections: Int
        public var failovers: Int
    }

    public let configuration: Configuration
    private let group: EventLoopGroup
    private let user: PoolUser
    private let logger: Logger
    private let state = NIOLockedValueBox(Outcome(records: [], submitted: 0, rejections: 0, failovers: 0))
    private let listeners = NIOLockedValueBox<[@Sendable (CalcAppJobRecord) -> Void]>([])

    public init(configuration: Configuration, eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "edgepool.calcapp.pu")) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.user = PoolUser(registrars: configuration.registrars, staleCacheTimeout: .zero, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// Called for every completed request (on some event loop).
    public func onCompletion(_ listener: @escaping @Sendable (CalcAppJobRecord) -> Void) {
        listeners.withLockedValue { $0.append(listener) }
    }

    public var outcome: Outcome { state.withLockedValue { $0 } }

    /// What the users tell a Component Status monitor (`calcapp-pu --csp`): their requests so
    /// far, and as associations the PEs that completed the last ones (up to
    /// `statusElements`), newest first.
    public func statusSnapshot() -> ComponentStatusReporter.Snapshot {
        let now = outcome
        var elements: [PoolElementIdentifier] = []
        for record in now.records.reversed() where !elements.contains(record.element) {
            elements.append(record.element)
            if elements.count == Self.statusElements { break }
        }
        let status = "\(configuration.users) user(s): \(now.submitted) submitted, \(now.records.count) completed, "
            + "\(now.failovers) failover(s), \(now.rejections) rejection(s)"
        return .init(location: "CalcApp pool users of \(configuration.poolHandle)", status: status,
                     associations: elements.map { .init(receiver: .init(.poolElement, UInt64($0.rawValue)), payloadProtocol: 0) })
    }

    /// PEs named as associations in a status report.
    public static let statusElements = 8

    /// Generates requests for `duration`; then, for up to `drain`, lets the requests in hand
    /// and in the queues finish; then stops and returns what was completed.
    public func run(for duration: TimeAmount, drain: TimeAmount = .zero) async throws -> Outcome {
        try configuration.validate()
        let end = NIODeadline.now() + duration
        var drivers: [(EventLoop, NIOLoopBoundBox<CalcAppClientDriver>)] = []
        for index in 0..<configuration.users {
            let loop = group.next()
            let driver = NIOLoopBoundBox.makeBoxSendingValue(
                CalcAppClientDriver(loop: loop, index: index, owner: self, end: end,
                                    generator: SplitMix64(seed: configuration.seed &* 0x9E37_79B9 &+ UInt64(index) &+ 1)),
                eventLoop: loop)
            drivers.append((loop, driver))
            try await loop.submit { driver.value.start() }.get()
        }
        let remaining = end - NIODeadline.now()
        if remaining > .zero { try await Task.sleep(nanoseconds: UInt64(remaining.nanoseconds)) }
        let drainEnd = NIODeadline.now() + drain
        while NIODeadline.now() < drainEnd, outcome.records.count < outcome.submitted {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        for (loop, driver) in drivers { try? await loop.submit { driver.value.stop() }.get() }
        await user.shutdown()
        return outcome
    }

    // MARK: - For the drivers

    func select(_ completion: @escaping @Sendable (PoolElementParameter?) -> Void) {
        let handle = configuration.poolHandle
        let user = self.user
        let group = self.group
        group.next().makeFutureWithTask { try await user.resolve(handle, maximumCount: 1).first }.whenComplete { result in
            completion(try? result.get())
        }
    }

    func reportUnreachable(_ identifier: PoolElementIdentifier) {
        let handle = configuration.poolHandle
        let user = self.user
        group.next().makeFutureWithTask { await user.reportUnreachable(handle, identifier) }.whenComplete { _ in }
    }

    /// A job that left its PE for another (the PE died, refused its cookie, stopped answering).
    public struct Failover: Sendable {
        public var user: Int
        public var job: UInt32
        public var from: PoolElementIdentifier
        public var reason: String
        /// The PU holds a cookie from that PE: the next one resumes from it.
        public var resumesFromCookie: Bool
    }

    /// Every failover so far (bounded: the first `maximumFailoverEvents`).
    public var failoverEvents: [Failover] { failoverLog.withLockedValue { $0 } }
    static let maximumFailoverEvents = 10_000
    private let failoverLog = NIOLockedValueBox<[Failover]>([])

    func failedOver(user: Int, job: UInt32, from element: PoolElementIdentifier, reason: String, resumable: Bool) {
        state.withLockedValue { $0.failovers += 1 }
        failoverLog.withLockedValue { log in
            if log.count < Self.maximumFailoverEvents {
                log.append(Failover(user: user, job: job, from: element, reason: reason, resumesFromCookie: resumable))
            }
        }
        logger.info("job failed over", metadata: ["job": "\(job)", "from": "\(element)", "reason": "\(reason)",
                                                  "resumes_from_cookie": "\(resumable)"])
    }

    func submitted() { state.withLockedValue { $0.submitted += 1 } }
    func rejected() { state.withLockedValue { $0.rejections += 1 } }

    func completed(_ record: CalcAppJobRecord) {
        state.withLockedValue { $0.records.append(record) }
        for listener in listeners.withLockedValue({ $0 }) { listener(record) }
    }

    func openSession(to address: SocketAddress, on loop: EventLoop,
                     initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        StreamTransport.connect(to: address, transport: configuration.transport, group: loop, initializer: initializer)
    }
}
