import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProcessSupport
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// `edgepool pe` as a library call: `count` demo services (echo, discard, daytime), each
/// registered as a PE of its own, run until SIGTERM/SIGINT, then deregistered and closed.
public enum PoolElementDaemon {
    /// Runs until a shutdown signal; prints `edgepool pe ready id=… pool=… service=… user=… transport=… policy=…`
    /// (several PEs: comma-separated identifiers and addresses).
    /// - Parameters:
    ///   - settings: the flags over the configuration file.
    ///   - count: PEs to run in this process, each with its own service listener.
    ///   - acceptsTakeover: listen for registrars' adoption after a takeover (RFC 5352 §3.9).
    ///   - metrics: the process's Prometheus exposition text, for `/metrics`.
    ///   - logger: where the PEs log.
    public static func run(_ settings: PoolElementSettings, count: Int = 1, acceptsTakeover: Bool = true,
                           metrics: @escaping @Sendable () -> String, logger: Logger = Logger(label: "edgepool.pe")) async throws {
        let configuration = try settings.configuration()
        if let server = configuration.proxy {
            return try await runProxy(server, configuration, settings: settings, metrics: metrics, logger: logger)
        }
        guard count >= 1 else { throw ConfigurationError("count: at least one PE") }
        guard configuration.identifier == nil || count == 1 else { throw ConfigurationError("an identifier and more than one PE exclude each other") }
        let policy = configuration.policy, sessionsForFullLoad = configuration.sessionsForFullLoad

        // Each PE's object is created after its service is bound (it needs the port), so load
        // updates go through a box the session counter can reach.
        var elements: [PoolElement] = [], servers: [DemoServer] = []
        var users: [String] = [], elementIDs: [PoolElementIdentifier] = []
        for _ in 0..<count {
            let elementBox = NIOLockedValueBox<PoolElement?>(nil)
            let server = try await configuration.service.start(on: configuration.listen, transport: configuration.transport,
                                                               group: MultiThreadedEventLoopGroup.singleton) { sessions in
                guard policy.type.isAdaptive, let element = elementBox.withLockedValue({ $0 }) else { return }
                element.updatePolicy(policy.withLoad(PoolPolicy.load(fraction: Double(sessions) / Double(sessionsForFullLoad))))
            }
            guard let bound = server.localAddress, let userTransport = TransportAddress(tcp: bound) else {
                throw CannotListenError(addresses: ["\(configuration.listen)"], underlying: ConfigurationError("the service did not bind"))
            }
            let registration = configuration.registration(userTransport: userTransport)
            let element = PoolElement(registration: registration, registrars: configuration.registrars, acceptsTakeover: acceptsTakeover, logger: logger)
            elementBox.withLockedValue { $0 = element }
            elements.append(element)
            servers.append(server)
            users.append(bound.endpointDescription)
            elementIDs.append(registration.identifier)
        }
        var reporters: [any Service] = []
        for (index, element) in elements.enumerated() {
            let identifier = UInt64(elementIDs[index].rawValue)
            let location = "\(configuration.service.rawValue) \(users[index])", pool = "\(configuration.poolHandle)"
            reporters += try DaemonRunner.statusReporter(settings.csp, interval: settings.cspInterval, sender: .init(.poolElement, identifier), logger: logger) {
                await element.componentStatus(location: location, pool: pool)
            }
        }
        let services: [any Service] = elements + DaemonRunner.statusService(settings.status, metrics: metrics, logger: logger) + reporters
        try await DaemonRunner.run(services, logger: logger, ready: {
            ReadyLine(daemon: "pe", [
                "id": elementIDs.map(\.description).joined(separator: ","), "pool": "\(configuration.poolHandle)",
                "service": configuration.service.rawValue, "user": users.joined(separator: ","),
                "transport": configuration.transport.rawValue, "policy": "\(policy)",
            ])
        })
        for server in servers { await server.close() }
    }

    /// A proxy PE: the legacy server's address registered while its health checks pass.
    private static func runProxy(_ server: SocketAddress, _ configuration: PoolElementSettings.Configuration, settings: PoolElementSettings,
                                 metrics: @escaping @Sendable () -> String, logger: Logger) async throws {
        guard let transport = TransportAddress(tcp: server) else { throw ConfigurationError(setting: "proxy", "is not an IP address and port") }
        let registration = configuration.registration(userTransport: transport)
        let proxy = ProxyPoolElement(server: server, registration: registration, registrars: configuration.registrars, check: configuration.healthCheck,
                                     load: configuration.proxyLoad, logger: logger)
        let location = "proxy for \(server.endpointDescription)", pool = "\(configuration.poolHandle)"
        let reporters = try DaemonRunner.statusReporter(settings.csp, interval: settings.cspInterval,
                                                        sender: .init(.poolElement, UInt64(registration.identifier.rawValue)), logger: logger) {
            guard let element = proxy.registeredElement else {
                return .init(location: location, status: "\(pool): server failing its health checks, not registered")
            }
            return await element.componentStatus(location: location, pool: pool)
        }
        let services: [any Service] = [proxy] + DaemonRunner.statusService(settings.status, metrics: metrics, logger: logger) + reporters
        try await DaemonRunner.run(services, logger: logger, ready: {
            ReadyLine(daemon: "pe", [
                "id": "\(registration.identifier)", "pool": "\(configuration.poolHandle)", "service": "proxy",
                "user": server.endpointDescription, "transport": configuration.transport.rawValue, "policy": "\(configuration.policy)",
            ])
        })
    }
}

extension PoolElement {
    /// What a PE reports to a CSP monitor: registered or not, its load (Least-Used policies)
    /// and its home registrar as its association.
    fileprivate func componentStatus(location: String, pool: String) async -> ComponentStatusReporter.Snapshot {
        let home = await homeRegistrar
        let registered = await isRegistered
        return .init(location: location, status: "\(pool): \(registered ? "registered" : "not registered")", workload: await loadFraction,
                     associations: home == .unknown ? [] : [.init(receiver: .init(.registrar, UInt64(home.rawValue)),
                                                                payloadProtocol: ComponentStatusReport.Association.asap)])
    }
}
