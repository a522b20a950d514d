import Logging
import NIOCore

/// Keeps connections to a reverse proxy's static backends — or an entry gateway's exit —
/// open ahead of the clients that will use them (`--preconnect N`: N per event loop), so a
/// client's connection skips the upstream connect — with a backend or an exit one network
/// round trip away, that round trip (and for an encrypted pair the TLS handshake's); on
/// loopback, most of the gateway's own connection set-up.
///
/// A held connection reads at most once before it is handed over (a server that speaks
/// first has its greeting delivered when the client arrives), is dropped when the backend
/// closes it, and is replaced after its lifetime so that backend idle timeouts do not bite
/// (``lifetime`` for backends, ``pairLifetime`` for an exit, which closes a connection that
/// sends no pair header within its handshake timeout).
/// Backends come round robin; a failed connect is retried after `retryDelay`, and a client
/// that finds the pool empty connects as without one.
final class UpstreamPreconnector: Sendable {
    /// How long a connection is held before it is replaced.
    static let lifetime: TimeAmount = .seconds(30)
    /// How long a connection to the exit gateway is held: replaced (checked every half
    /// lifetime, so at most 1.5 × this old) before the exit's default 10 s handshake timeout
    /// closes a connection that has sent no header.
    static let pairLifetime: TimeAmount = .seconds(5)
    /// Wait after a failed connect before the pool tries again.
    static let retryDelay: TimeAmount = .seconds(1)

    /// Each loop's pool, made on its loop by `start`.
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<LoopPool?>]
    private let count: Int
    private let backends: [SocketAddress]
    private let target: Target
    private let connector: UpstreamConnector
    private let logger: Logger

    /// What the held connections go to.
    struct Target: Sendable {
        /// "backend", "exit gateway" (logs and errors).
        var name: String
        /// TLS on the held connections (an encrypted pair): the handshake is done while held.
        var tls: PairTLS?
        var lifetime: TimeAmount

        static let backends = Target(name: "backend", tls: nil, lifetime: UpstreamPreconnector.lifetime)
        static func exit(tls: PairTLS?) -> Target { Target(name: "exit gateway", tls: tls, lifetime: UpstreamPreconnector.pairLifetime) }
    }

    init(loops: [EventLoop], perLoop count: Int, backends: [SocketAddress], target: Target = .backends, connector: UpstreamConnector, logger: Logger) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<LoopPool?>] = [:]
        for loop in loops { pools[ObjectIdentifier(loop)] = .makeEmptyBox(valueType: LoopPool.self, eventLoop: loop) }
        self.pools = pools
        self.count = count
        self.backends = backends
        self.target = target
        self.connector = connector
        self.logger = logger
    }

    /// Starts filling every loop's pool.
    func start() {
        for box in pools.values {
            box.eventLoop.execute { [count, backends, target, connector, logger] in
                let pool = LoopPool(loop: box.eventLoop, count: count, backends: backends, target: target, connector: connector, logger: logger)
                box.value = pool
                pool.start()
            }
        }
    }

    /// A held connection to a backend, or nil when this loop's pool is empty. On `loop`.
    func take(on loop: EventLoop) -> Channel? {
        pools[ObjectIdentifier(loop)]?.value?.take()
    }

    /// Closes the held connections and stops refilling.
    func stop() {
        for box in pools.values {
            box.eventLoop.execute { box.value?.stop() }
        }
    }

    /// One event loop's held connections (touched only on that loop).
    final class LoopPool {
        private let loop: EventLoop
        private let count: Int
        private let backends: [SocketAddress]
        private let target: Target
        private let connector: UpstreamConnector
        private let logger: Logger
        private var ready: [(channel: Channel, since: NIODeadline)] = []
        private var pending = 0
        private var next = 0
        private var stopped = false
        private var retry: Scheduled<Void>?
        /// Connects are failing: logged once when it starts and once when it ends.
        private var failing = false
        private var expiry: Scheduled<Void>?

        init(loop: EventLoop, count: Int, backends: [SocketAddress], target: Target, connector: UpstreamConnector, logger: Logger) {
            self.loop = loop
            self.count = count
            self.backends = backends
            self.target = target
            self.connector = connector
            self.logger = logger
        }

        func start() {
            fill()
            scheduleExpiry()
        }

        func take() -> Channel? {
            // Refill after this tick: the client's relay goes first.
            defer { loop.assumeIsolated().execute { [self] in fill() } }
            while !ready.isEmpty {
                let (channel, _) = ready.removeFirst()
                if channel.isActive { return channel }
            }
            return nil
        }

        func stop() {
            stopped = true
            retry?.cancel()
            expiry?.cancel()
            for (channel, _) in ready { channel.close(promise: nil) }
            ready = []
        }

        /// The backend closed a held connection (or it expired).
        fileprivate func lost(_ channel: Channel) {
            ready.removeAll { $0.channel === channel }
            fill()
        }

        private func fill() {
            guard !stopped, retry == nil else { return }
            while ready.count + pending < count { connectOne() }
        }

        private func connectOne() {
            pending += 1
            let start = next % backends.count
            next += 1
            let rotated = Array(backends[start...] + backends[..<start])
            connector.connect(to: rotated, target: target.name, on: loop, tls: target.tls).assumeIsolated().whenComplete { [self] result in
                pending -= 1
                switch result {
                case .success(let channel):
                    guard !stopped else {
                        channel.close(promise: nil)
                        return
                    }
                    if failing {
                        failing = false
                        logger.info("preconnect works again", metadata: ["to": "\(target.name)"])
                    }
                    do {
                        try UpstreamHolds.install(PreconnectedHolder(pool: self), on: channel)
                        ready.append((channel, .now()))
                    } catch {
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    guard !stopped, retry == nil else { return }
                    logger.log(level: failing ? .debug : .info, "preconnect failed; trying again every \(Self.retryDelayText)",
                               metadata: ["to": "\(target.name)", "error": "\(error)"])
                    failing = true
                    retry = loop.assumeIsolated().scheduleTask(in: UpstreamPreconnector.retryDelay) { [self] in
                        retry = nil
                        fill()
                    }
                }
            }
        }

        private static let retryDelayText = "\(UpstreamPreconnector.retryDelay.nanoseconds / 1_000_000) ms"

        /// Replaces held connections older than `lifetime`, every half lifetime.
        private func scheduleExpiry() {
            let lifetime = target.lifetime
            expiry = loop.assumeIsolated().scheduleTask(in: .nanoseconds(lifetime.nanoseconds / 2)) { [self] in
                guard !stopped else { return }
                let now = NIODeadline.now()
                // Out of `ready` before the close: a TLS channel stays active while its
                // close_notify exchange runs, and a client must not take it meanwhile.
                let expired = ready.filter { now - $0.since > lifetime }
                ready.removeAll { now - $0.since > lifetime }
                for (channel, _) in expired { channel.close(promise: nil) }
                fill()
                scheduleExpiry()
            }
        }
    }
}

/// Sits on a held upstream connection until a client takes it: reads at most once (what a
/// server says first waits for the client), and tells the pool when the backend closes.
final class PreconnectedHolder: ChannelDuplexHandler, RemovableChannelHandler, UpstreamHold {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var held: ByteBuffer?
    private var pool: UpstreamPreconnector.LoopPool?

    init(pool: UpstreamPreconnector.LoopPool) {
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if held == nil { held = buffer } else { held!.writeBuffer(&buffer) }
    }

    func read(context: ChannelHandlerContext) {
        if held == nil { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool?.lost(context.channel)
        pool = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The backend half-closed a connection nobody uses yet: it is of no use.
        if let event = event as? ChannelEvent, event == .inputClosed, pool != nil {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Called as the relay takes the connection over (on its loop): the bytes the backend
    /// sent while it was held, and the holder steps aside.
    func releaseToRelay(_ channel: Channel) -> ByteBuffer? {
        pool = nil
        let held = self.held
        self.held = nil
        channel.pipeline.syncOperations.removeHandler(self, promise: nil)
        return held
    }
}
