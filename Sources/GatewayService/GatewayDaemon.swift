import Logging
import NIOCore
import ProcessSupport
import PathManagerService
import RSerPool

/// `edgepool gateway MODE` as a library call: the settings checked for the mode, the
/// connection cap fitted to the open-file limit, the gateway and its status endpoint run
/// until SIGTERM/SIGINT (then connections drain for `drainTimeout`).
public enum GatewayDaemon {
    /// Runs until a shutdown signal; prints `edgepool gateway ready mode=… listen=… transport=… upstream=…`.
    /// - Parameters:
    ///   - kind: the mode (`edgepool gateway socks`, `http`, …).
    ///   - settings: the flags over the configuration file.
    ///   - metrics: the process's Prometheus exposition text, for `/metrics`.
    ///   - logger: where the gateway logs.
    public static func run(_ kind: GatewaySettings.Kind, _ settings: GatewaySettings, metrics: @escaping @Sendable () -> String,
                           logger: Logger = Logger(label: "edgepool.gateway")) async throws {
        var configuration = try settings.configuration(kind)
        // Two descriptors per relayed connection (client and upstream): the caps, not the
        // descriptor table, decide how many clients are held.
        let cap = DescriptorLimit.cap(configuration.limits.maximumConnections, perConnection: 2, limit: DescriptorLimit.raise())
        if let reason = cap.reason {
            logger.warning("connection cap lowered", metadata: ["reason": "\(reason)", "max_connections": "\(cap.value)"])
            configuration.limits.maximumConnections = cap.value
        }
        // The path manager first: without CAP_NET_ADMIN, or with a bad path, nothing starts.
        let paths = try settings.pathManager().map { try EmbeddedPathManager(configuration: $0, logger: Logger(label: "edgepool.paths")) }
        let gateway: Gateway
        do {
            gateway = try Gateway(configuration: configuration, logger: logger)
        } catch {
            paths?.handBack()
            throw error
        }
        let listen = configuration.listen.map(\.endpointDescription)
        let status = DaemonRunner.statusService(settings.status, routes: paths.map { ["/paths": $0.statusRoute] } ?? [:], metrics: metrics, logger: logger)
        try await DaemonRunner.run([gateway] + status + (paths.map { [$0] } ?? []), logger: logger, ready: {
            let addresses = try await gateway.listeningAddresses
            return ReadyLine(daemon: "gateway", [
                "mode": configuration.mode.name,
                "listen": addresses.map(\.endpointDescription).joined(separator: ","),
                "transport": configuration.listenTransport.rawValue,
                "upstream": configuration.upstreamTransport.rawValue,
                "paths": paths?.summary,
            ])
        }, cannotStart: { CannotListenError(addresses: listen, underlying: $0) })
    }
}
