import CalcApp
import RSerPool
import RSerPoolCore
import RSerPoolWire

/// The CalcApp PE daemon's settings (`edgepool calcapp-pe`, its flags and configuration file
/// keys); every one optional, ``configuration()`` checks them and applies the defaults.
///
///     {"pool": "CalcAppPool", "capacity": 1000000, "maxJobs": 4, "secret": "…", "delay": "3ms"}
public struct CalcAppPoolElementSettings: DaemonSettings, Equatable {
    public var registrar: [Endpoint]?
    public var pool: String?
    public var capacity: Double?
    public var maxJobs: Int?
    public var policy: String?
    public var increment: Double?
    public var listen: Endpoint?
    public var delay: SettingDuration?
    public var secret: String?
    public var cookieInterval: SettingDuration?
    public var cookieCalculations: Double?
    public var transport: TransportProtocol?
    public var identifier: String?
    /// Sessions per second a drain (SIGUSR1) moves to other PEs.
    public var drainRate: Double?
    public var status: Endpoint?
    public var logLevel: String?

    public init() {}

    public static let defaultPool = "CalcAppPool"
    public static let defaultCapacity = 1_000_000.0
    public static let defaultMaxJobs = 4
    /// Every PE of a pool needs the same cookie secret; this one is for labs only.
    public static let defaultSecret = "edgepool"
    public static let drainRates = 0.01...100_000.0

    /// - Throws: `ConfigurationError` (RSerPool) naming the setting.
    public func configuration() throws -> CalcAppPoolElementConfiguration {
        try ConfigurationError.check(capacity, atLeast: 1, "capacity")
        try ConfigurationError.check(maxJobs, atLeast: 1, "maxJobs")
        try ConfigurationError.check(increment, in: 0...1, "increment")
        try ConfigurationError.check(cookieCalculations, atLeast: 1, "cookieCalculations")
        try ConfigurationError.check(drainRate, in: Self.drainRates, "drainRate")
        let policyName = policy ?? "plu"
        guard let type = PolicyType(name: policyName) else {
            throw ConfigurationError(setting: "policy", "'\(policyName)' is not a policy; known: \(PolicyType.implemented.map(\.1).joined(separator: ", "))")
        }
        var server = CalcAppServerConfiguration(capacity: capacity ?? Self.defaultCapacity, maxJobs: maxJobs ?? Self.defaultMaxJobs,
                                                secret: CookieSecret(passphrase: secret ?? Self.defaultSecret))
        if let cookieInterval { server.cookieInterval = cookieInterval.amount }
        if let cookieCalculations { server.cookieCalculations = cookieCalculations }
        let transport = transport ?? .mptcp
        var configuration = CalcAppPoolElementConfiguration(
            server: server, poolHandle: PoolHandle(pool ?? Self.defaultPool),
            policy: OffloadingSimulation.policy(type, load: 0, increment: increment ?? 0.1),
            listenAddress: try (listen ?? Endpoint(host: "127.0.0.1", port: 0)).socketAddress(),
            registrars: try RegistrarList.fromSettings(registrar, transport: transport, announce: nil, announceInterface: nil))
        configuration.transport = transport
        if let delay { configuration.delay = delay.amount }
        if let drainRate { configuration.drainRate = drainRate }
        if let identifier { configuration.identifier = PoolElementIdentifier(try SettingText.identifier(identifier, "identifier")) }
        return configuration
    }
}
