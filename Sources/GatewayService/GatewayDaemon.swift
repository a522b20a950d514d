import Logging
import NIOCore
import ProcessSupport
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
        let gateway = try Gateway(configuration: configuration, logger: logger)
        let listen = configuration.listen.map(\.endpointDescription)
        try await DaemonRunner.run([gateway] + DaemonRunner.statusService(settings.status, metrics: metrics, logger: logger), logger: logger, ready: {
            let addresses = try await gateway.listeningAddresses
            return ReadyLine(daemon: "gateway", [
                "mode": configuration.mode.name,
                "listen": addresses.map(\.endpointDescription).joined(separator: ","),
                "transport": configuration.listenTransport.rawValue,
                "upstream": configuration.upstreamTransport.rawValue,
            ])
        }, cannotStart: { CannotListenError(addresses: listen, underlying: $0) })
    }
}
