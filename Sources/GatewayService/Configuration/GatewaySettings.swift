import Foundation
import Gateway
import NIOCore
import RSerPool
import RSerPoolWire
import PathManager
import PathManagerService

/// The gateway daemon's settings (`edgepool gateway MODE`, its flags and configuration file
/// keys), every one optional; ``configuration(_:)`` checks them for a mode and applies the
/// defaults.
///
///     {"listen": ["127.0.0.1:0"], "allow": ["127.0.0.1/32"], "users": {"carol": "pw"}, "idleTimeout": "30s"}
public struct GatewaySettings: DaemonSettings, Equatable {
    public var listen: [Endpoint]?
    public var listenTransport: TransportProtocol?
    public var upstreamTransport: TransportProtocol?
    public var allow: [String]?
    public var deny: [String]?
    public var defaultDeny: Bool?
    public var allowClient: [String]?
    public var openProxy: Bool?
    /// Users by name: password.
    public var users: [String: String]?
    /// Users as `NAME:PASSWORD` (the `--user` flag's form), added to ``users``.
    public var user: [String]?
    public var maxConnections: Int?
    public var maxConnectionsPerClient: Int?
    public var handshakeTimeout: SettingDuration?
    public var connectTimeout: SettingDuration?
    public var idleTimeout: SettingDuration?
    public var drainTimeout: SettingDuration?
    public var bufferLimit: Int?
    public var readSize: Int?
    public var readsPerEvent: Int?
    public var connectionLog: String?
    public var telemetryInterval: SettingDuration?
    /// HTTP address for /metrics (served by the daemon).
    public var status: Endpoint?
    /// Event-loop threads (the daemon sets NIO's loop count from it).
    public var threads: Int?
    public var logLevel: String?
    // reverse
    public var backends: [Endpoint]?
    public var pool: String?
    public var registrars: [Endpoint]?
    /// Reverse proxy on a pool: ASAP over TLS toward the registrars (their CA; this
    /// gateway's certificate and key as a pool user).
    public var registrarTlsCa: String?
    public var registrarTlsCertificate: String?
    public var registrarTlsKey: String?
    public var preconnect: Int?
    // http
    public var connectPorts: [String]?
    // socks
    public var udp: Bool?
    public var maxUdpAssociations: Int?
    // entry and exit
    public var exit: Endpoint?
    public var forward: String?
    public var secret: String?
    public var secretFile: String?
    /// The encrypted pair (TLS 1.3, mutual): this gateway's certificate chain and key, the
    /// CA the other end's certificate must chain to (PEM files), and the other end's
    /// identity (entry: the exit's one name; exit: the entries it accepts).
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsCa: String?
    public var peerIdentity: [String]?
    // the path manager for this namespace (every mode)
    /// Paths in `edgepool paths run`'s `--path` form; given, the gateway runs the path manager.
    public var path: [String]?
    public var probe: String?
    /// The path manager on the kernel's userspace PM (`net.mptcp.pm_type=1`), not endpoints.
    public var userspacePm: Bool?

    public init() {}

    /// The path manager the gateway runs for its namespace (`path`, `probe`, `userspacePm`,
    /// checked as `edgepool paths run` checks them), or nil without paths.
    /// - Throws: `ConfigurationError` naming the setting.
    public func pathManager() throws -> PathManagerConfiguration? {
        guard let path, !path.isEmpty else {
            if probe != nil || userspacePm != nil { throw ConfigurationError(setting: probe != nil ? "probe" : "userspacePm", "needs at least one --path (path)") }
            return nil
        }
        var settings = PathManagerSettings()
        settings.path = path
        settings.probe = probe
        settings.userspace = userspacePm
        return try settings.configuration()
    }

    /// The gateway's modes, as `edgepool gateway` names them.
    public enum Kind: String, Sendable, CaseIterable {
        case socks, http, reverse, entry, exit

        /// Where a mode listens by default: client-facing proxies on loopback only.
        public var defaultListen: Endpoint {
            switch self {
            case .socks, .entry: Endpoint(host: "127.0.0.1", port: 1080)
            case .http: Endpoint(host: "127.0.0.1", port: 3128)
            case .reverse: Endpoint(host: "0.0.0.0", port: 8080)
            case .exit: Endpoint(host: "0.0.0.0", port: 7000)
            }
        }

        /// The keys beyond the common ones this mode reads.
        public var modeKeys: Set<String> {
            switch self {
            case .socks: ["udp", "maxUdpAssociations"]
            case .http: ["connectPorts"]
            case .reverse: ["backends", "pool", "registrars", "preconnect", "registrarTlsCa", "registrarTlsCertificate", "registrarTlsKey"]
            case .entry: ["exit", "forward", "preconnect", "secret", "secretFile", "tlsCertificate", "tlsKey", "tlsCa", "peerIdentity"]
            case .exit: ["secret", "secretFile", "tlsCertificate", "tlsKey", "tlsCa", "peerIdentity"]
            }
        }
    }

    /// Every mode's own keys; the others are common to all modes.
    private static let modeSpecificKeys = Kind.allCases.reduce(into: Set<String>()) { $0.formUnion($1.modeKeys) }

    /// The keys a configuration file for `kind` may hold.
    public static func keys(for kind: Kind) -> Set<String> {
        keys.subtracting(modeSpecificKeys).union(kind.modeKeys)
    }

    /// The bounds of the numeric settings.
    public static let bufferBytes = 4096...(16 << 20)
    public static let readsPerEventRange = 1...16
    public static let threadsRange = 1...256
    public static let preconnectRange = 0...64

    /// The configuration of a gateway in mode `kind`.
    /// - Throws: `ConfigurationError` (RSerPool) naming the setting.
    public func configuration(_ kind: Kind) throws -> GatewayConfiguration {
        var configuration = GatewayConfiguration(mode: try mode(kind), listen: try (listen ?? [kind.defaultListen]).map { try $0.socketAddress() })
        if let v = listenTransport { configuration.listenTransport = v }
        if let v = upstreamTransport { configuration.upstreamTransport = v }
        do {
            configuration.destinations = DestinationPolicy(allow: try (allow ?? []).map { try DestinationRule(parsing: $0) },
                                                           deny: try (deny ?? []).map { try DestinationRule(parsing: $0) },
                                                           defaultAllow: !(defaultDeny ?? false))
            configuration.clients = try ClientAccessList(parsing: allowClient ?? [])
        } catch {
            throw ConfigurationError("\(error)")
        }
        configuration.openProxy = openProxy ?? false
        configuration.credentials = try credentials()
        try ConfigurationError.check(maxConnections, atLeast: 1, "maxConnections")
        try ConfigurationError.check(maxConnectionsPerClient, atLeast: 1, "maxConnectionsPerClient")
        try ConfigurationError.check(bufferLimit, in: Self.bufferBytes, "bufferLimit")
        try ConfigurationError.check(readSize, in: Self.bufferBytes, "readSize")
        try ConfigurationError.check(readsPerEvent, in: Self.readsPerEventRange, "readsPerEvent")
        try ConfigurationError.check(threads, in: Self.threadsRange, "threads")
        var limits = configuration.limits
        if let v = maxConnections { limits.maximumConnections = v }
        if let v = maxConnectionsPerClient { limits.maximumConnectionsPerClient = v }
        if let v = handshakeTimeout { limits.handshakeTimeout = v.amount }
        if let v = connectTimeout { limits.connectTimeout = v.amount }
        if let v = idleTimeout { limits.idleTimeout = v.amount }
        if let v = drainTimeout { limits.drainTimeout = v.amount }
        if let v = bufferLimit { limits.bufferLimit = v }
        if let v = readSize {
            limits.plainReadSize = v
            limits.readSize = min(limits.readSize, v)
        }
        if let v = readsPerEvent { limits.readsPerEvent = v }
        configuration.connectionLogPath = connectionLog
        if let v = telemetryInterval { configuration.telemetryInterval = v.amount }

        switch kind {
        case .socks:
            configuration.udpRelay = udp ?? true
            try ConfigurationError.check(maxUdpAssociations, atLeast: 1, "maxUdpAssociations")
            if let v = maxUdpAssociations { limits.maximumUDPAssociations = v }
        case .http:
            if let ports = connectPorts, !ports.isEmpty { configuration.tunnelPorts = try ports.map(Self.portRange) }
        case .reverse:
            try ConfigurationError.check(preconnect, in: Self.preconnectRange, "preconnect")
            if let v = preconnect {
                guard v == 0 || pool == nil else {
                    throw ConfigurationError("--preconnect needs --backend: a pool's PE is chosen per client by its policy")
                }
                configuration.preconnect = v
            }
        case .entry, .exit:
            if kind == .entry {
                try ConfigurationError.check(preconnect, in: Self.preconnectRange, "preconnect")
                if let v = preconnect { configuration.preconnect = v }
            }
            configuration.pairSecret = try pairSecret()
            configuration.pairTLS = try pairTLS(kind == .entry ? .entry : .exit, handshakeTimeout: limits.handshakeTimeout)
        }
        configuration.limits = limits
        return configuration
    }

    private func mode(_ kind: Kind) throws -> GatewayConfiguration.Mode {
        switch kind {
        case .socks: return .socks5
        case .http: return .httpProxy
        case .exit: return .exit
        case .reverse:
            let backends = self.backends ?? []
            if let handle = pool {
                guard backends.isEmpty else { throw ConfigurationError("give --pool or --backend, not both") }
                let registrars = self.registrars ?? [Endpoint(host: "127.0.0.1", port: 3863)]
                return .reverse(.pool(PoolHandle(handle), try RegistrarList(try registrars.map { try $0.socketAddress() })
                    .withTLS(ca: registrarTlsCa, certificate: registrarTlsCertificate, key: registrarTlsKey)))
            }
            guard !backends.isEmpty else { throw ConfigurationError("give --backend host:port (repeatable) or --pool HANDLE") }
            return .reverse(.addresses(try backends.map { try $0.socketAddress() }))
        case .entry:
            guard let exit else { throw ConfigurationError("the entry gateway needs --exit host:port") }
            var destination: ProxyDestination?
            if let forward {
                guard let parsed = HTTPProxyRequestInterpreter.parseAuthority(Substring(forward), defaultPort: nil) else {
                    throw ConfigurationError(setting: "forward", "wants host:port, got '\(forward)'")
                }
                destination = parsed
            }
            return .entry(exit: try exit.socketAddress(), forward: destination)
        }
    }

    /// ``users`` with ``user``'s entries added (those win for the same name).
    private func credentials() throws -> ProxyCredentials? {
        var all = users ?? [:]
        for entry in user ?? [] {
            guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex else {
                throw ConfigurationError("--user wants NAME:PASSWORD, got '\(entry)'")
            }
            all[String(entry[..<colon])] = String(entry[entry.index(after: colon)...])
        }
        let bound = ProxyLimits.maximumCredentialLength
        for (name, password) in all where name.utf8.count > bound || password.utf8.count > bound || password.isEmpty {
            throw ConfigurationError("user '\(name)': name and password must be 1–\(bound) bytes")
        }
        return all.isEmpty ? nil : ProxyCredentials(all)
    }

    /// The pair secret from ``secret``, else the file ``secretFile`` (trailing newlines dropped).
    private func pairSecret() throws -> PairSecret {
        var text = secret
        if text == nil, let path = secretFile {
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError("cannot read the secret file '\(path)'")
            }
            text = contents.trimmingCharacters(in: .newlines)
        }
        guard let text else { throw ConfigurationError("the gateway pair needs --secret or --secret-file") }
        do {
            return try PairSecret(text)
        } catch {
            throw ConfigurationError("\(error)")
        }
    }

    /// The encrypted pair's TLS when any of its settings is given (then all three files are needed).
    private func pairTLS(_ role: PairTLS.Role, handshakeTimeout: TimeAmount) throws -> PairTLS? {
        guard tlsCertificate != nil || tlsKey != nil || tlsCa != nil || peerIdentity != nil else { return nil }
        return try PairTLS(role: role, files: TLSFiles(certificateChain: tlsCertificate, privateKey: tlsKey, trustRoots: tlsCa),
                           peerIdentities: Set(peerIdentity ?? []), handshakeTimeout: handshakeTimeout)
    }

    /// "443" or "8000-8100".
    static func portRange(_ text: String) throws -> ClosedRange<UInt16> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = UInt16(bounds[0]), let high = UInt16(bounds.last!), low <= high else {
            throw ConfigurationError("--connect-port wants PORT or LOW-HIGH, got '\(text)'")
        }
        return low...high
    }
}
