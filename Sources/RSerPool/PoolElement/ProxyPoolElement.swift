import Logging
import NIOCore
import NIOPosix
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// A proxy pool element (RFC 5351 §2.2, "proxy PEs can connect legacy non-RSerPool
/// servers"): registers an unmodified server's address in a pool on its behalf while its
/// health checks pass, and deregisters it when they fail — the pool's users then only ever
/// get a server that answers. The registrar must accept a registration of another host's
/// address from this proxy: its own address on one host, `--proxy-identity` with TLS, or
/// `--accept-foreign-addresses` in a lab.
public final class ProxyPoolElement: Service, Sendable {
    /// How the server is checked: a TCP connection to it within `timeout` — or, with
    /// `httpPath`, an HTTP GET of that path answered with a 2xx or 3xx status within
    /// `timeout` (a server that accepts connections but answers 500 or nothing is not healthy).
    public struct HealthCheck: Sendable {
        public var interval: TimeAmount = .seconds(1)
        public var timeout: TimeAmount = .milliseconds(500)
        public var failuresForDown = 3
        public var successesForUp = 2
        public var httpPath: String?
        public init() {}
    }

    public let server: SocketAddress
    public let registration: PoolElementRegistration
    public let registrars: RegistrarList
    public let check: HealthCheck
    private let logger: Logger

    public init(server: SocketAddress, registration: PoolElementRegistration, registrars: RegistrarList, check: HealthCheck = HealthCheck(),
                logger: Logger = Logger(label: "edgepool.pe.proxy")) {
        self.server = server
        self.registration = registration
        self.registrars = registrars
        self.check = check
        var logger = logger
        logger[metadataKey: "server"] = "\(server.endpointDescription)"
        self.logger = logger
    }

    public func run() async throws {
        logger.info("checking the server", metadata: ["pool": "\(registration.poolHandle)", "interval": "\(check.interval)"])
        // The health loop runs until a graceful shutdown; it hands back the PE registered then.
        let last = try await cancelWhenGracefulShutdown { () async -> (PoolElement, Task<Void, Error>)? in
            var health = ProxyHealth(failuresForDown: self.check.failuresForDown, successesForUp: self.check.successesForUp)
            var element: (PoolElement, Task<Void, Error>)?
            while !Task.isCancelled {
                switch health.checked(await self.serverAnswers()) {
                case .up?:
                    self.logger.notice("server healthy: registering it", metadata: ["pool": "\(self.registration.poolHandle)"])
                    // No takeover listener: a registrar's adoption would reach this host, not the server.
                    let pe = PoolElement(registration: self.registration, registrars: self.registrars, acceptsTakeover: false, logger: self.logger)
                    element = (pe, Task { try await pe.run() })
                case .down?:
                    self.logger.warning("server failed its health checks: deregistering it", metadata: ["failures": "\(self.check.failuresForDown)"])
                    if let (pe, task) = element {
                        pe.stop()
                        _ = await task.result
                    }
                    element = nil
                case nil:
                    break
                }
                try? await Task.sleep(nanoseconds: UInt64(self.check.interval.nanoseconds))
            }
            return element
        }
        if let (pe, task) = last {
            pe.stop()
            _ = await task.result
        }
    }

    /// One health check: a TCP connection to the server, or an HTTP GET.
    private func serverAnswers() async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(check.timeout).connect(to: server).get()
            defer { channel.close(promise: nil) }
            guard let path = check.httpPath else { return true }
            let answer = channel.eventLoop.makePromise(of: HTTPHealthCheck.Verdict.self)
            try await channel.pipeline.addHandler(HTTPHealthReader(answer: answer))
            // The reader decides on its loop; the timeout closes the channel, which fails it.
            let timeout = channel.eventLoop.scheduleTask(in: check.timeout) { channel.close(promise: nil) }
            defer { timeout.cancel() }
            try await channel.writeAndFlush(ByteBuffer(bytes: HTTPHealthCheck.request(path: path, host: server.endpointDescription)))
            switch try await answer.futureResult.get() {
            case .passed: return true
            case .failed(let reason):
                logger.info("health check failed", metadata: ["reason": "\(reason)"])
                return false
            case .incomplete: return false
            }
        } catch {
            return false
        }
    }
}

/// Reads the answer to a health check's request until its status line is decided; the
/// connection ending first fails it.
private final class HTTPHealthReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    struct Closed: Error {}
    private let answer: EventLoopPromise<HTTPHealthCheck.Verdict>
    private var received: [UInt8] = []
    private var decided = false

    init(answer: EventLoopPromise<HTTPHealthCheck.Verdict>) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else { return }
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytesView.prefix(HTTPHealthCheck.maximumStatusLineBytes - received.count)
        let verdict = HTTPHealthCheck.verdict(received)
        guard verdict != .incomplete else { return }
        decided = true
        answer.succeed(verdict)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            answer.fail(Closed())
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !decided {
            decided = true
            answer.fail(error)
        }
        context.close(promise: nil)
    }
}
