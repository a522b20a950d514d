import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProcessSupport
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// A proxy pool element (RFC 5351 §2.2, "proxy PEs can connect legacy non-RSerPool
/// servers"): registers an unmodified server's address in a pool on its behalf while its
/// health checks pass, and deregisters it when they fail — the pool's users then only ever
/// get a server that answers. With a `ProxyLoadSource` and a Least-Used policy it also
/// reports the server's load (its connection count, or a figure from a metrics URL), so the
/// pool's users are sent to the least loaded server. The registrar must accept a registration of another host's
/// address from this proxy: its own address on one host, `--proxy-identity` with TLS, or
/// `--accept-foreign-addresses` in a lab.
public final class ProxyPoolElement: Service, Sendable {
    /// How the server is checked: a TCP connection to it within `timeout` — or, with
    /// `httpPath`, an HTTP GET of that path answered with a 2xx or 3xx status within
    /// `timeout` (a server that accepts connections but answers 500 or nothing is not healthy)
    /// — or, with `command`, `/bin/sh -c COMMAND` exiting 0 within `timeout` (the server's
    /// address and port are its `$1` and `$2`; one still running then is killed with what it
    /// started, and fails).
    public struct HealthCheck: Sendable {
        public var interval: TimeAmount = .seconds(1)
        public var timeout: TimeAmount = .milliseconds(500)
        public var failuresForDown = 3
        public var successesForUp = 2
        public var httpPath: String?
        public var command: String?
        public init() {}
    }

    public let server: SocketAddress
    public let registration: PoolElementRegistration
    public let registrars: RegistrarList
    public let check: HealthCheck
    /// Where the server's load is read at every check while it is registered (nil: the
    /// registration's policy value stays as given).
    public let load: ProxyLoadSource?
    private let logger: Logger
    private let current = NIOLockedValueBox<PoolElement?>(nil)

    /// The PE registering the server now; nil while its health checks keep it out.
    public var registeredElement: PoolElement? { current.withLockedValue { $0 } }

    public init(server: SocketAddress, registration: PoolElementRegistration, registrars: RegistrarList, check: HealthCheck = HealthCheck(),
                load: ProxyLoadSource? = nil, logger: Logger = Logger(label: "edgepool.pe.proxy")) {
        self.server = server
        self.registration = registration
        self.registrars = registrars
        self.check = check
        self.load = load
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
            var reported = LoadReporting()
            while !Task.isCancelled {
                switch health.checked(await self.serverAnswers()) {
                case .up?:
                    var registration = self.registration
                    if let fraction = await self.readLoad(&reported) {
                        registration.policy = self.policy(withLoad: fraction)
                        reported.registered = fraction
                    }
                    self.logger.notice("server healthy: registering it", metadata: ["pool": "\(self.registration.poolHandle)", "policy": "\(registration.policy)"])
                    // No takeover listener: a registrar's adoption would reach this host, not the server.
                    let pe = PoolElement(registration: registration, registrars: self.registrars, acceptsTakeover: false, logger: self.logger)
                    element = (pe, Task { try await pe.run() })
                    self.current.withLockedValue { $0 = pe }
                case nil where element != nil:
                    if let (pe, _) = element, let fraction = await self.readLoad(&reported),
                       ProxyLoad.isWorthUpdating(from: reported.registered ?? -1, to: fraction) {
                        pe.updatePolicy(self.policy(withLoad: fraction))
                        self.logger.debug("load changed: re-registering", metadata: ["load": "\(Int((fraction * 100).rounded())) %"])
                        reported.registered = fraction
                    }
                case .down?:
                    self.logger.warning("server failed its health checks: deregistering it", metadata: ["failures": "\(self.check.failuresForDown)"])
                    self.current.withLockedValue { $0 = nil }
                    if let (pe, task) = element {
                        pe.stop()
                        _ = await task.result
                    }
                    element = nil
                    reported.registered = nil
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

    /// What was last registered as the server's load, and whether reading it is failing
    /// (its warning is logged once per failing streak).
    private struct LoadReporting {
        var registered: Double?
        var failing = false
    }

    /// The registration's policy carrying `fraction` as its load.
    private func policy(withLoad fraction: Double) -> PoolPolicy {
        registration.policy.withLoad(PoolPolicy.load(fraction: fraction))
    }

    /// The server's load now, as a fraction of full; nil when it cannot be read (logged).
    private func readLoad(_ reporting: inout LoadReporting) async -> Double? {
        guard let load else { return nil }
        do {
            let fraction = try await ProxyLoadReader.read(load, server: server, timeout: check.timeout)
            if reporting.failing { logger.notice("server load readable again", metadata: ["source": "\(load)"]) }
            reporting.failing = false
            return fraction
        } catch {
            if !reporting.failing { logger.warning("cannot read the server's load: keeping the last one", metadata: ["source": "\(load)", "error": "\(error)"]) }
            reporting.failing = true
            return nil
        }
    }

    /// One health check: a TCP connection to the server, an HTTP GET, or a command.
    private func serverAnswers() async -> Bool {
        if let command = check.command { return await commandPasses(command) }
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

extension ProxyPoolElement {
    /// `/bin/sh -c COMMAND edgepool-health-check HOST PORT`: exit 0 within the timeout passes.
    fileprivate func commandPasses(_ command: String) async -> Bool {
        let host = server.ipAddress ?? "", port = server.port ?? 0
        let child: ChildProcess
        do {
            child = try ChildProcess("health check", ["-c", command, "edgepool-health-check", host, "\(port)"], executable: "/bin/sh")
        } catch {
            logger.warning("cannot run the health check command", metadata: ["error": "\(error)"])
            return false
        }
        // Killed with what it started when `child` goes away, if still running.
        do {
            let status = try await child.waitForExit(timeout: Double(check.timeout.nanoseconds) / 1e9)
            if status == 0 { return true }
            logger.info("health check failed", metadata: ["reason": "command exited with \(status)", "output": "\(child.lines.last { !$0.isEmpty }?.prefix(200) ?? "")"])
        } catch {
            // Also on shutdown (the wait is cancelled): the command is killed all the same.
            if !Task.isCancelled { logger.info("health check failed", metadata: ["reason": "command still running after \(check.timeout): killed"]) }
        }
        return false
    }
}

/// Reads a `ProxyLoadSource`: the connection table of this host, or an HTTP GET.
enum ProxyLoadReader {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ source: ProxyLoadSource, server: SocketAddress, timeout: TimeAmount) async throws -> Double {
        switch source {
        case .connections(let full):
            let address = server.ipAddress.flatMap(IPAddress.init)
            var count = 0
            for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
                // Not String(contentsOfFile:): Foundation reads a procfs file (size 0 to stat)
                // only up to its first page, about 27 of the table's sockets.
                guard let file = FileHandle(forReadingAtPath: table) else { continue }
                defer { try? file.close() }
                guard let data = try? file.readToEnd() else { continue }
                let text = String(decoding: data, as: UTF8.self)
                count += ProxyLoad.establishedConnections(in: text, port: server.port ?? 0, address: address)
            }
            return ProxyLoad.fraction(Double(count), full: Double(full))
        case .http(let host, let port, let path, let metric, let full):
            let body = try await StatusClient.get(Endpoint(host: host, port: port), path: path, timeout: timeout, maximumBytes: ProxyLoad.maximumResponseBytes)
            let value = metric.map { ProxyLoad.prometheusValue(of: $0, in: body) } ?? ProxyLoad.plainValue(body)
            guard let value else {
                throw Unreadable(description: metric.map { "no sample of \($0) in the answer" } ?? "the answer is not one number")
            }
            return ProxyLoad.fraction(value, full: full)
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
