import NIOCore
import RSerPoolCore
import RSerPoolWire

/// The registrar daemon's settings (`edgepool registrar`, its flags and its configuration
/// file's keys): every one optional; ``configuration()`` checks them and applies the
/// defaults.
///
///     {"listen": ["0.0.0.0:3863", "[::]:3863"], "status": "127.0.0.1:9090",
///      "keepAliveInterval": "5s", "keepAliveTimeout": "5s"}
public struct RegistrarSettings: DaemonSettings, Equatable {
    public var identifier: String?
    public var listen: [Endpoint]?
    public var transport: TransportProtocol?
    /// HTTP address for /metrics and /handlespace (served by the daemon, not the registrar).
    public var status: Endpoint?
    public var keepAliveInterval: SettingDuration?
    public var keepAliveTimeout: SettingDuration?
    public var maxUnreachableReports: Int?
    public var maxHandleLength: Int?
    public var maxPoolElements: Int?
    public var maxPoolElementsPerAssociation: Int?
    public var maxAssociations: Int?
    public var maxAssociationsPerAddress: Int?
    /// TLS handshakes under way at once; connections beyond are closed at accept.
    public var maxHandshakes: Int?
    public var messageRate: Double?
    public var idleTimeout: SettingDuration?
    public var partialMessageTimeout: SettingDuration?
    public var notReadingTimeout: SettingDuration?
    public var acceptForeignAddresses: Bool?
    public var announce: Endpoint?
    public var announceInterface: String?
    public var enrpListen: [Endpoint]?
    public var peer: [Endpoint]?
    public var enrpAnnounce: Endpoint?
    public var allowedPeer: [String]?
    public var peerHeartbeatInterval: SettingDuration?
    public var peerMaxTimeLastHeard: SettingDuration?
    public var peerMaxTimeNoResponse: SettingDuration?
    public var takeoverExpiry: SettingDuration?
    /// ASAP over TLS: this registrar's certificate chain and key (PEM files).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// The CA whose certificates PEs and PUs must present (mutual TLS); with it every
    /// association has an identity, which `authorize` rules name.
    public var tlsCa: String?
    /// `IDENTITY=POOL[,POOL…]`: which identities may register in which pools.
    public var authorize: [String]?
    /// Identities that may register addresses other than their own (proxy PEs).
    public var proxyIdentity: [String]?
    /// The certificate identities of this scope's registrars (ENRP over TLS needs them: a PE's
    /// certificate from the same CA must not make it a peer).
    public var peerIdentity: [String]?
    /// Close an association whose TLS handshake has not completed within this time.
    public var tlsHandshakeTimeout: SettingDuration?
    /// Send Component Status Protocol reports to this monitor (rsplib's cspmonitor, UDP 2960).
    public var csp: Endpoint?
    public var cspInterval: SettingDuration?
    /// swift-log level name (the daemon's, not the registrar's).
    public var logLevel: String?

    public init() {}

    /// ASAP's registered port.
    public static let defaultListen = Endpoint(host: "0.0.0.0", port: 3863)

    /// The registrar's configuration: the settings checked, the defaults where none is given.
    /// A random identifier when none is given.
    /// - Throws: ``ConfigurationError`` naming the setting.
    public func configuration() throws -> RegistrarServiceConfiguration {
        let id = try identifier.map { RegistrarIdentifier(try SettingText.identifier($0, "identifier")) } ?? .random()
        var registrar = RegistrarConfiguration(identifier: id)
        try ConfigurationError.check(maxUnreachableReports, atLeast: 1, "maxUnreachableReports")
        try ConfigurationError.check(maxHandleLength, in: 1...1024, "maxHandleLength")
        try ConfigurationError.check(maxPoolElements, atLeast: 1, "maxPoolElements")
        try ConfigurationError.check(maxPoolElementsPerAssociation, atLeast: 1, "maxPoolElementsPerAssociation")
        if let v = keepAliveInterval { registrar.keepAliveInterval = v.amount }
        if let v = keepAliveTimeout { registrar.keepAliveTimeout = v.amount }
        if let v = maxUnreachableReports { registrar.maximumUnreachableReports = v }
        if let v = maxHandleLength { registrar.maximumPoolHandleLength = v }
        if let v = maxPoolElements { registrar.maximumPoolElements = v }
        if let v = maxPoolElementsPerAssociation { registrar.maximumPoolElementsPerAssociation = v }
        if let v = peerHeartbeatInterval { registrar.peerHeartbeatInterval = v.amount }
        if let v = peerMaxTimeLastHeard { registrar.peerMaxTimeLastHeard = v.amount }
        if let v = peerMaxTimeNoResponse { registrar.peerMaxTimeNoResponse = v.amount }
        if let v = takeoverExpiry { registrar.takeoverExpiry = v.amount }
        registrar.acceptsForeignAddresses = acceptForeignAddresses ?? false
        if let allowed = allowedPeer, !allowed.isEmpty {
            registrar.allowedPeers = Set(try allowed.map { RegistrarIdentifier(try SettingText.identifier($0, "allowedPeer")) })
        }

        var limits = AssociationLimits()
        if let v = maxAssociations { limits.maximumAssociations = v }
        if let v = maxAssociationsPerAddress { limits.maximumAssociationsPerAddress = v }
        if let v = maxHandshakes { limits.maximumConcurrentHandshakes = v }
        if let v = messageRate { limits.messageRate = v }
        if let v = idleTimeout { limits.idleTimeout = v.amount }
        if let v = partialMessageTimeout { limits.partialMessageTimeout = v.amount }
        if let v = notReadingTimeout { limits.notReadingTimeout = v.amount }
        do {
            try limits.validate()
        } catch {
            throw ConfigurationError("\(error)")
        }

        var configuration = RegistrarServiceConfiguration(registrar: registrar,
                                                          listenAddresses: try (listen ?? [Self.defaultListen]).map { try $0.socketAddress() })
        configuration.transport = transport ?? .mptcp
        configuration.associationLimits = limits
        configuration.enrpListenAddresses = try (enrpListen ?? []).map { try $0.socketAddress() }
        configuration.peers = try (peer ?? []).map { try $0.socketAddress() }
        let interface = try announceInterface.map { try SettingText.address($0, "announceInterface") }
        if let group = enrpAnnounce {
            var presence = ServerAnnounceConfiguration(group: try group.socketAddress())
            presence.interval = registrar.peerHeartbeatInterval
            if let interface { presence.interface = interface }
            configuration.enrpAnnounce = presence
        }
        if !configuration.peers.isEmpty || configuration.enrpAnnounce != nil, configuration.enrpListenAddresses.isEmpty {
            throw ConfigurationError("--peer and --enrp-announce need --enrp-listen (enrpListen): peers must be able to reach this registrar too")
        }
        if let group = announce {
            var announce = ServerAnnounceConfiguration(group: try group.socketAddress())
            if let interface { announce.interface = interface }
            configuration.announce = announce
        }
        try applyTLS(to: &configuration)
        return configuration
    }

    /// TLS and identity authorization: a certificate needs its key; rules and proxy
    /// identities need client certificates (`tlsCa`), since they name authenticated identities.
    private func applyTLS(to configuration: inout RegistrarServiceConfiguration) throws {
        let rules = authorize ?? [], proxies = proxyIdentity ?? []
        guard tlsCertificate != nil || tlsKey != nil || tlsCa != nil || !rules.isEmpty || !proxies.isEmpty || tlsHandshakeTimeout != nil
                || peerIdentity != nil else { return }
        guard tlsCertificate != nil, tlsKey != nil else {
            throw ConfigurationError(setting: "tlsCertificate", "and --tls-key (tlsKey) are both needed for ASAP over TLS")
        }
        if (!rules.isEmpty || !proxies.isEmpty) && tlsCa == nil {
            throw ConfigurationError(setting: "authorize", "names authenticated identities: give --tls-ca (tlsCa), the CA whose certificates PEs must present")
        }
        let files = TLSFiles(certificateChain: tlsCertificate, privateKey: tlsKey, trustRoots: tlsCa)
        configuration.tlsFiles = files
        configuration.tls = try files.serverContext()
        configuration.requiresClientCertificates = tlsCa != nil
        // Adopting a taken-over PE means dialling its ASAP listener, which speaks TLS when the
        // PEs do: this registrar's certificate, the CA to check theirs.
        if tlsCa != nil { configuration.adoptionTLS = try files.clientContext(verifyingAddress: false) }
        if let v = tlsHandshakeTimeout {
            guard v.amount > .zero else { throw ConfigurationError(setting: "tlsHandshakeTimeout", "must be positive") }
            configuration.tlsHandshakeTimeout = v.amount
        }
        if !rules.isEmpty {
            do {
                configuration.registrar.poolAuthorization = try PoolAuthorization(parsing: rules)
            } catch {
                throw ConfigurationError(setting: "authorize", "\(error)")
            }
        }
        configuration.registrar.proxyIdentities = Set(proxies)
        if !configuration.enrpListenAddresses.isEmpty || !configuration.peers.isEmpty {
            guard tlsCa != nil, let identities = peerIdentity, !identities.isEmpty else {
                throw ConfigurationError(setting: "peerIdentity", "is needed for ENRP over TLS, with --tls-ca (tlsCa): the certificate names of this scope's registrars")
            }
            configuration.peerTLS = PeerTLS(server: try files.serverContext(), client: try files.clientContext(), identities: Set(identities),
                                            handshakeTimeout: configuration.tlsHandshakeTimeout)
        }
    }
}
