import ArgumentParser
import Logging
import RSerPool

/// Durations and endpoints are the libraries' setting types; on the command line they parse
/// the way configuration files write them.
typealias Duration = SettingDuration
typealias Endpoint = RSerPool.Endpoint

extension SettingDuration: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension RSerPool.Endpoint: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension TransportProtocol: ExpressibleByArgument {}
extension DemoService: ExpressibleByArgument {}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Options every daemon shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level?

    @Option(name: .long, help: ArgumentHelp("A JSON file with the same settings as the flags (flags win).", valueName: "file"))
    var config: String?
}

/// Component Status Protocol reports to rsplib's monitor (registrar, PE).
struct ComponentStatusOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Send Component Status reports to this monitor, e.g. rsplib's cspmonitor on 127.0.0.1:2960 (off unless given).", valueName: "host:port"))
    var csp: Endpoint?

    @Option(help: "Time between Component Status reports (the monitor forgets a component after about 10). [default: 1s]")
    var cspInterval: Duration?
}

/// A daemon's configuration file, or no settings when there is none.
func loadSettings<T: DaemonSettings>(_ path: String?, as type: T.Type) throws -> T {
    guard let path else { return T() }
    return try asValidation { try T.load(file: path) }
}

/// The log level: the flag, else the file's, else `fallback`.
func logLevel(_ flag: Logger.Level?, file: String?, fallback: Logger.Level = .info) throws -> Logger.Level {
    if let flag { return flag }
    guard let file else { return fallback }
    guard let level = Logger.Level(rawValue: file) else {
        throw ValidationError("logLevel: '\(file)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return level
}

extension Array {
    /// nil for an empty array: a repeatable flag that was not given.
    var nonEmpty: Self? { isEmpty ? nil : self }
}
