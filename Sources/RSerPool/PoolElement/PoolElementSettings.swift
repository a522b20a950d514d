import NIOCore
import RSerPoolCore
import RSerPoolWire

/// The PE daemon's settings (`edgepool pe`, its flags and configuration file keys); every
/// one optional, ``configuration()`` checks them and applies the defaults.
///
///     {"pool": "EchoPool", "policy": "plu", "increment": 0.1, "registrar": ["127.0.0.1:3863"]}
public struct PoolElementSettings: DaemonSettings, Equatable {
    public var registrar: [Endpoint]?
    public var pool: String?
    public var service: DemoService?
    public var listen: Endpoint?
    public var transport: TransportProtocol?
    public var identifier: String?
    public var policy: String?
    public var load: Double?
    public var increment: Double?
    public var degradation: Double?
    public var weight: UInt32?
    public var priority: UInt32?
    public var maxSessions: Int?
    public var reregistrationInterval: SettingDuration?
    public var status: Endpoint?
    public var announce: Endpoint?
    public var announceInterface: String?
    /// A proxy PE: register this legacy server (HOST:PORT) instead of a demo service, while
    /// its health checks (TCP connections) pass.
    public var proxy: Endpoint?
    public var healthInterval: SettingDuration?
    public var healthTimeout: SettingDuration?
    public var healthFailures: Int?
    public var healthSuccesses: Int?
    /// A proxy PE's check is an HTTP GET of this path (2xx or 3xx passes), not a bare connection.
    public var healthHttp: String?
    /// A proxy PE's check is this shell command exiting 0 (`$1` and `$2`: the server's address and port).
    public var healthCommand: String?
    /// A proxy PE's load (Least-Used policies): the server's established connections on this
    /// host over this number …
    public var loadConnections: Int?
    /// … or a figure fetched from this `http://` URL: metric `loadMetric` of a Prometheus
    /// exposition (else the body as one number), over `loadFull` (default 1).
    public var loadUrl: String?
    public var loadMetric: String?
    public var loadFull: Double?
    /// ASAP over TLS toward the registrars: their CA, and this PE's certificate and key.
    public var tlsCa: String?
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// The certificate identities of the registrars that may adopt this PE after a takeover
    /// (empty: any certificate of `tlsCa`).
    public var registrarIdentity: [String]?
    /// Send Component Status Protocol reports to this monitor (rsplib's cspmonitor, UDP 2960).
    public var csp: Endpoint?
    public var cspInterval: SettingDuration?
    public var logLevel: String?

    public init() {}

    /// What a PE daemon runs: the service, where it listens, and its registration.
    public struct Configuration: Sendable {
        public var poolHandle: PoolHandle
        public var policy: PoolPolicy
        public var transport: TransportProtocol
        public var registrars: RegistrarList
        public var service: DemoService
        public var listen: SocketAddress
        /// Open sessions that make 100 % load (Least-Used policies).
        public var sessionsForFullLoad: Int
        /// A fixed identifier; nil: random (one per PE when a process runs several).
        public var identifier: PoolElementIdentifier?
        public var reregistrationInterval: TimeAmount?
        /// A proxy PE's legacy server and how it is checked (nil: a demo service).
        public var proxy: SocketAddress?
        public var healthCheck = ProxyPoolElement.HealthCheck()
        /// Where a proxy PE reads its server's load (nil: the policy's load stays as given).
        public var proxyLoad: ProxyLoadSource?

        /// The registration of one PE whose service listens at `userTransport`.
        public func registration(userTransport: TransportAddress) -> PoolElementRegistration {
            var registration = PoolElementRegistration(poolHandle: poolHandle, identifier: identifier ?? .random(),
                                                       userTransport: userTransport, policy: policy)
            if let reregistrationInterval {
                registration.reregistrationInterval = reregistrationInterval
                registration.registrationLife = reregistrationInterval * 3
            }
            return registration
        }
    }

    /// Pool handles a PE may name (RFC 5351 leaves the length open; registrars accept 32 by default).
    public static let poolHandleBytes = 1...32

    /// - Throws: ``ConfigurationError`` naming the setting.
    public func configuration() throws -> Configuration {
        let handle = PoolHandle(pool ?? "EchoPool")
        guard Self.poolHandleBytes.contains(handle.bytes.count) else {
            throw ConfigurationError(setting: "pool", "must be \(Self.poolHandleBytes.lowerBound)…\(Self.poolHandleBytes.upperBound) bytes")
        }
        let policy = try PoolPolicy.fromSettings(name: self.policy ?? "rr", load: load ?? 0, increment: increment ?? 0,
                                                 degradation: degradation ?? 0, weight: weight ?? 1, priority: priority ?? 1)
        try ConfigurationError.check(maxSessions, atLeast: 1, "maxSessions")
        if let interval = reregistrationInterval, interval.amount <= .zero {
            throw ConfigurationError(setting: "reregistrationInterval", "must be positive")
        }
        let transport = self.transport ?? .mptcp
        return Configuration(
            poolHandle: handle, policy: policy, transport: transport,
            registrars: try RegistrarList.fromSettings(registrar, transport: transport, announce: announce, announceInterface: announceInterface)
                .withTLS(ca: tlsCa, certificate: tlsCertificate, key: tlsKey).adoptedOnlyBy(try registrarIdentities()),
            service: service ?? .echo, listen: try (listen ?? Endpoint(host: "127.0.0.1", port: 0)).socketAddress(),
            sessionsForFullLoad: maxSessions ?? 10,
            identifier: try identifier.map { PoolElementIdentifier(try SettingText.identifier($0, "identifier")) },
            reregistrationInterval: reregistrationInterval?.amount,
            proxy: try proxy.map { try $0.socketAddress() }, healthCheck: try healthCheck(), proxyLoad: try proxyLoad(policy: policy))
    }

    /// `registrarIdentity`, which narrows the TLS adoption listener (so it needs a certificate).
    private func registrarIdentities() throws -> Set<String> {
        guard let names = registrarIdentity, !names.isEmpty else { return [] }
        guard tlsCa != nil, tlsCertificate != nil, tlsKey != nil else {
            throw ConfigurationError(setting: "registrarIdentity", "names the registrars that may adopt this PE over TLS: give --tls-ca, --tls-certificate and --tls-key")
        }
        return Set(names)
    }

    /// The proxy's load source from the settings: one of connections or a URL, for a proxy
    /// with a Least-Used policy.
    private func proxyLoad(policy: PoolPolicy) throws -> ProxyLoadSource? {
        if loadUrl == nil, loadMetric != nil || loadFull != nil {
            throw ConfigurationError(setting: loadMetric != nil ? "loadMetric" : "loadFull", "needs loadUrl (--load-url)")
        }
        let source: ProxyLoadSource
        switch (loadConnections, loadUrl) {
        case (nil, nil): return nil
        case (.some, .some): throw ConfigurationError(setting: "loadConnections", "and loadUrl are two load sources: give one")
        case (let full?, nil):
            try ConfigurationError.check(full, atLeast: 1, "loadConnections")
            source = .connections(full: full)
        case (nil, let url?):
            let full = loadFull ?? 1
            guard full > 0, full.isFinite else { throw ConfigurationError(setting: "loadFull", "must be positive") }
            if let loadMetric, !ProxyLoad.isValidMetricName(loadMetric) {
                throw ConfigurationError(setting: "loadMetric", "is not a Prometheus metric name: '\(loadMetric)'")
            }
            guard let http = ProxyLoadSource.http(url: url, metric: loadMetric, full: full) else {
                throw ConfigurationError(setting: "loadUrl", "must be http://HOST[:PORT][/PATH], not '\(url)'")
            }
            source = http
        }
        guard proxy != nil else { throw ConfigurationError(setting: loadUrl == nil ? "loadConnections" : "loadUrl", "is for a proxy PE (--proxy)") }
        guard policy.type.isAdaptive else {
            throw ConfigurationError(setting: loadUrl == nil ? "loadConnections" : "loadUrl",
                                     "needs a Least-Used policy (lu, rlu, lud, plu, …) to report the load in, not \(policy)")
        }
        return source
    }

    /// The proxy's health check from the settings (ranges checked).
    private func healthCheck() throws -> ProxyPoolElement.HealthCheck {
        var check = ProxyPoolElement.HealthCheck()
        try ConfigurationError.check(healthFailures, in: 1...100, "healthFailures")
        try ConfigurationError.check(healthSuccesses, in: 1...100, "healthSuccesses")
        for (key, value) in [("healthInterval", healthInterval), ("healthTimeout", healthTimeout)] {
            if let value, value.amount <= .zero { throw ConfigurationError(setting: key, "must be positive") }
        }
        if let v = healthInterval { check.interval = v.amount }
        if let v = healthTimeout { check.timeout = v.amount }
        if let v = healthFailures { check.failuresForDown = v }
        if let v = healthSuccesses { check.successesForUp = v }
        if let command = healthCommand {
            guard healthHttp == nil else { throw ConfigurationError(setting: "healthCommand", "and healthHttp are two checks: give one") }
            guard !command.allSatisfy(\.isWhitespace) else { throw ConfigurationError(setting: "healthCommand", "is empty") }
            check.command = command
        }
        if let path = healthHttp {
            guard HTTPHealthCheck.isValidPath(path) else {
                throw ConfigurationError(setting: "healthHttp", "must be a path such as /healthz (printable, no spaces), not '\(path)'")
            }
            check.httpPath = path
        }
        return check
    }
}
