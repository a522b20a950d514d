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
    /// How the server is checked: a TCP connection to it within `timeout`.
    public struct HealthCheck: Sendable {
        public var interval: TimeAmount = .seconds(1)
        public var timeout: TimeAmount = .milliseconds(500)
        public var failuresForDown = 3
        public var successesForUp = 2
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

    /// One health check: a TCP connection to the server.
    private func serverAnswers() async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(check.timeout).connect(to: server).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}
