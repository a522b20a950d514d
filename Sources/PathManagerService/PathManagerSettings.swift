import PathManager
import RSerPool

/// The path manager's settings (`edgepool paths run`, its flags and configuration file keys);
/// every one optional, ``configuration()`` checks them and applies the defaults.
///
///     {"path": ["wan1=10.0.1.2", "wan2=10.0.2.2,backup"], "probe": "10.0.9.1:9",
///      "probeInterval": "100ms", "userspace": true, "status": "127.0.0.1:9093"}
public struct PathManagerSettings: DaemonSettings, Equatable {
    /// Paths in the `--path` form, `IF=ADDR|auto|auto6[,backup][,noprobe][,rate=RATE][,fullmesh][,id=N][,port=P][,signal]`.
    public var path: [String]?
    /// Where the probes go, `ADDR:PORT` or `[V6]:PORT`.
    public var probe: String?
    public var probeInterval: SettingDuration?
    public var probeTimeout: SettingDuration?
    public var returnHold: SettingDuration?
    /// Probes unanswered in a row that retire a path. [default: 3]
    public var probeFailures: Int?
    /// Probes answered in a row before a returning path is held. [default: 2]
    public var probeSuccesses: Int?
    public var userspace: Bool?
    /// Userspace PM: `keep` (default) or `replace` a connection's first subflow when its path is lost.
    public var firstSubflow: String?
    public var status: Endpoint?
    public var logLevel: String?

    public init() {}

    /// Probe thresholds a path manager accepts.
    public static let probeCountRange = 1...100

    /// - Throws: `ConfigurationError` (RSerPool) naming the setting.
    public func configuration() throws -> PathManagerConfiguration {
        let paths = path ?? []
        let parsed: [PathManagerConfiguration.Path]
        do {
            parsed = try paths.enumerated().map { try PathManagerConfiguration.Path(parsing: $0.element, endpointID: UInt8(min($0.offset + 1, 255))) }
        } catch {
            throw ConfigurationError(setting: "path", "\(error)")
        }
        let target: PathManagerConfiguration.ProbeTarget?
        do {
            target = try probe.map { try PathManagerConfiguration.ProbeTarget(parsing: $0) }
        } catch {
            throw ConfigurationError(setting: "probe", "\(error)")
        }
        var configuration = PathManagerConfiguration(paths: parsed, probeTarget: target)
        if let v = probeInterval { configuration.probeInterval = v.amount }
        if let v = probeTimeout { configuration.probeTimeout = v.amount }
        if let v = returnHold { configuration.health.returnHoldTime = v.amount }
        for (key, value) in [("probeFailures", probeFailures), ("probeSuccesses", probeSuccesses)] {
            if let value, !Self.probeCountRange.contains(value) {
                throw ConfigurationError(setting: key, "must be within \(Self.probeCountRange.lowerBound)–\(Self.probeCountRange.upperBound), got \(value)")
            }
        }
        if let v = probeFailures { configuration.health.probeFailuresForLoss = v }
        if let v = probeSuccesses { configuration.health.probeSuccessesForReturn = v }
        if userspace == true { configuration.kernelManager = .userspace }
        if let firstSubflow {
            guard let policy = UserspaceSubflowPlanner.FirstSubflow(rawValue: firstSubflow) else {
                throw ConfigurationError(setting: "firstSubflow", "must be keep or replace, not '\(firstSubflow)'")
            }
            configuration.firstSubflow = policy
        }
        do {
            try configuration.validate()
        } catch {
            throw ConfigurationError("\(error)")
        }
        return configuration
    }
}
