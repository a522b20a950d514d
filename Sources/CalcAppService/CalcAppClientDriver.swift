import CalcApp
import NIOCore
import RSerPool
import RSerPoolCore
import RSerPoolWire

/// What a CalcApp client driver needs from the pool users it belongs to: PE selection,
/// Endpoint Unreachable reports, session sockets, and where outcomes go.
/// `CalcAppPoolUsers` is the real one (registrars, TCP/MPTCP); tests give their own.
protocol CalcAppClientOwner: AnyObject, Sendable {
    var configuration: CalcAppPoolUsers.Configuration { get }
    /// Asks for a PE (nil: none); `completion` may run on any event loop.
    func select(_ completion: @escaping @Sendable (PoolElementParameter?) -> Void)
    func reportUnreachable(_ identifier: PoolElementIdentifier)
    /// A session to a PE, its pipeline set up by `initializer`.
    func openSession(to address: SocketAddress, on loop: EventLoop,
                     initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel>
    func submitted()
    func rejected()
    func completed(_ record: CalcAppJobRecord)
    func failedOver(user: Int, job: UInt32, from element: PoolElementIdentifier, reason: String, resumable: Bool)
}

/// One pool user on its event loop: the CalcApp client state machine, its session, its job source.
final class CalcAppClientDriver {
    let loop: EventLoop
    private let index: Int
    private let owner: any CalcAppClientOwner
    private let end: NIODeadline
    private var client: CalcAppClient
    private var generator: SplitMix64
    private var session: Channel?
    private var sessionGeneration = 0
    private var timer: Scheduled<Void>?
    private var arrival: Scheduled<Void>?
    private var nextJobID: UInt32 = 0
    private var stopped = false

    init(loop: EventLoop, index: Int, owner: any CalcAppClientOwner, end: NIODeadline, generator: SplitMix64) {
        self.loop = loop
        self.index = index
        self.owner = owner
        self.end = end
        self.client = CalcAppClient(configuration: owner.configuration.client)
        self.generator = generator
    }

    func start() { scheduleArrival() }

    func stop() {
        stopped = true
        arrival?.cancel()
        timer?.cancel()
        session?.close(promise: nil)
    }

    private func scheduleArrival() {
        let wait = owner.configuration.interArrival.sample(using: &generator)
        let at = loop.now + .nanoseconds(Int64(wait * 1e9))
        guard at < end else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        arrival = loop.scheduleTask(deadline: at) { bound.value.jobArrives() }
    }

    private func jobArrives() {
        guard !stopped else { return }
        nextJobID &+= 1
        let size = UInt64(max(1, owner.configuration.requestSize.sample(using: &generator).rounded()))
        owner.submitted()
        perform(client.jobArrived(CalcAppJob(id: nextJobID, size: size, arrival: loop.now), now: loop.now))
        scheduleArrival()
    }

    private func perform(_ actions: [CalcAppClient.Action]) {
        guard !stopped else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        for action in actions {
            switch action {
            case .select:
                owner.select { element in
                    bound.eventLoop.execute { bound.value.perform(bound.value.client.selected(element, now: bound.value.loop.now)) }
                }
            case .connect(let element):
                sessionGeneration += 1
                let generation = sessionGeneration
                guard let address = try? element.userTransport.socketAddress() else {
                    perform(client.connectFailed(now: loop.now))
                    continue
                }
                owner.openSession(to: address, on: loop) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addSessionCodec()
                        try channel.pipeline.syncOperations.addHandler(InboundCallbackHandler<SessionInbound>(
                            onMessage: { bound.value.received($0, generation: generation) },
                            onClose: { bound.value.closed(generation: generation) }))
                    }
                }.hop(to: loop).whenComplete { result in
                    let driver = bound.value
                    guard generation == driver.sessionGeneration else {
                        if case .success(let channel) = result { channel.close(promise: nil) }
                        return
                    }
                    switch result {
                    case .success(let channel):
                        driver.session = channel
                        driver.perform(driver.client.connected(now: driver.loop.now))
                    case .failure:
                        driver.perform(driver.client.connectFailed(now: driver.loop.now))
                    }
                }
            case .send(let message):
                session?.writeAndFlush(message, promise: nil)
            case .closeSession:
                sessionGeneration += 1
                session?.close(promise: nil)
                session = nil
            case .reportUnreachable(let identifier):
                owner.reportUnreachable(identifier)
            case .completed(let record):
                owner.completed(record)
            case .event(let event):
                switch event {
                case .rejected: owner.rejected()
                case .failover(let job, let element, let reason):
                    owner.failedOver(user: index, job: job, from: element, reason: reason, resumable: client.hasCookie)
                default: break
                }
            }
        }
        timer?.cancel()
        if let deadline = client.nextDeadline {
            let bound = NIOLoopBound(self, eventLoop: loop)
            timer = loop.scheduleTask(deadline: deadline) { bound.value.perform(bound.value.client.timerFired(now: bound.value.loop.now)) }
        }
    }

    fileprivate func received(_ inbound: SessionInbound, generation: Int) {
        guard generation == sessionGeneration else { return }
        switch inbound {
        case .message(let message): perform(client.received(message, now: loop.now))
        case .malformed: session?.close(promise: nil)
        }
    }

    fileprivate func closed(generation: Int) {
        guard generation == sessionGeneration else { return }
        session = nil
        perform(client.sessionClosed(now: loop.now))
    }
}
