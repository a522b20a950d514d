import Logging
import ProcessSupport
import RSerPoolWire
import ServiceLifecycle

/// `edgepool registrar` as a library call: the settings checked, the association cap fitted
/// to the open-file limit, the registrar and its status endpoint run until SIGTERM/SIGINT.
public enum RegistrarDaemon {
    /// Runs until a shutdown signal; prints `edgepool registrar ready id=… asap=… transport=… [enrp=…]`.
    /// - Parameters:
    ///   - settings: the flags over the configuration file.
    ///   - metrics: the process's Prometheus exposition text, for `/metrics`.
    ///   - logger: where the registrar logs.
    public static func run(_ settings: RegistrarSettings, metrics: @escaping @Sendable () -> String,
                           logger: Logger = Logger(label: "edgepool.registrar")) async throws {
        var configuration = try settings.configuration()
        // The caps, not the descriptor table, decide how many associations are held.
        let cap = DescriptorLimit.cap(configuration.associationLimits.maximumAssociations, limit: DescriptorLimit.raise())
        if let reason = cap.reason {
            logger.warning("association cap lowered", metadata: ["reason": "\(reason)", "max_associations": "\(cap.value)"])
            configuration.associationLimits.maximumAssociations = cap.value
            configuration.associationLimits.maximumAssociationsPerAddress = min(configuration.associationLimits.maximumAssociationsPerAddress, cap.value)
        }
        let exposed = configuration.listenAddresses.filter { address in
            guard let ip = IPAddress(address)?.unmappedIPv4 else { return true }
            return !ip.isLoopback
        }
        if configuration.tls == nil, !exposed.isEmpty {
            logger.warning("ASAP listens without authentication beyond loopback: any host that reaches it can register PEs in any pool and receive their users; give --tls-certificate, --tls-key, --tls-ca and --authorize to require certificates",
                           metadata: ["listen": "\(exposed.map(\.endpointDescription).joined(separator: ","))"])
        } else if configuration.tls != nil, !configuration.requiresClientCertificates {
            logger.notice("ASAP over TLS without client certificates (no --tls-ca): PEs are not authenticated")
        }
        if let keyLog = TLSKeyLog.path, configuration.tls != nil {
            logger.warning("TLS session secrets are written to SSLKEYLOGFILE: for debugging only, whoever reads it reads the traffic", metadata: ["file": "\(keyLog)"])
        }
        if configuration.registrar.acceptsForeignAddresses {
            logger.notice("registrations may name addresses other than their own (--accept-foreign-addresses)")
        }
        let registrar = Registrar(configuration: configuration, logger: logger)
        let identifier = configuration.registrar.identifier
        let reporter = try DaemonRunner.statusReporter(settings.csp, interval: settings.cspInterval, sender: .init(.registrar, UInt64(identifier.rawValue)),
                                                       logger: logger) {
            await Self.statusReport(registrar)
        }
        let services: [any Service] = [registrar] + DaemonRunner.statusService(settings.status, registrar: registrar, metrics: metrics, logger: logger) + reporter
        // SIGHUP: read the certificate files again (a renewed certificate without a restart).
        let reload = configuration.tls == nil ? nil : DaemonRunner.onHangUp {
            do {
                try registrar.reloadCertificates()
                logger.notice("certificates reloaded: new associations use them")
            } catch {
                logger.error("certificates not reloaded; the old ones stay in use", metadata: ["error": "\(error)"])
            }
        }
        defer { reload?.cancel() }
        try await DaemonRunner.run(services, logger: logger, ready: {
            let addresses = try await registrar.listeningAddresses
            let peerAddresses = try await registrar.peerListeningAddresses
            return ReadyLine(daemon: "registrar", [
                "id": "\(configuration.registrar.identifier)",
                "asap": addresses.map(\.endpointDescription).joined(separator: ","),
                "transport": configuration.transport.rawValue,
                "enrp": peerAddresses.isEmpty ? nil : peerAddresses.map(\.endpointDescription).joined(separator: ","),
                "tls": configuration.tls == nil ? nil : (configuration.requiresClientCertificates ? "mutual" : "server"),
            ])
        }, cannotStart: { CannotListenError(addresses: configuration.listenAddresses.map(\.endpointDescription), underlying: $0) })
    }

    /// What the registrar tells the component status monitor: its ASAP and ENRP addresses,
    /// its handlespace in numbers, one association per peer registrar.
    static func statusReport(_ registrar: Registrar) async -> ComponentStatusReporter.Snapshot {
        let asap = (try? await registrar.listeningAddresses) ?? []
        let enrp = (try? await registrar.peerListeningAddresses) ?? []
        guard let snapshot = try? await registrar.snapshot() else { return .init(location: "registrar", status: "starting") }
        let location = "ASAP " + asap.map(\.endpointDescription).joined(separator: ", ") + (enrp.isEmpty ? "" : "; ENRP " + enrp.map(\.endpointDescription).joined(separator: ", "))
        let status = "\(snapshot.poolElementCount) PEs in \(snapshot.pools.count) Pool(s), \(snapshot.peers.count) Peer(s)"
        let peers = snapshot.peers.compactMap { peer -> ComponentStatusReport.Association? in
            guard let id = try? SettingText.identifier(peer.identifier, "peer") else { return nil }
            return .init(receiver: .init(.registrar, UInt64(id)), payloadProtocol: ComponentStatusReport.Association.enrp)
        }
        return .init(location: location, status: status, associations: peers)
    }
}
