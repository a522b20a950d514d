import Dispatch
import Foundation
import Logging
import RSerPoolWire
import ProcessSupport
import ServiceLifecycle

/// How every EdgePool daemon runs its services: in one service group that shuts down
/// gracefully on SIGTERM/SIGINT, with the ready line printed once the listeners are bound.
public enum DaemonRunner {
    /// Runs `services` until a shutdown signal. `ready` waits for the listeners (it throws if
    /// they cannot bind) and gives the ready line to print; `cannotStart` turns its error into
    /// the one the caller reports. When `mayFinish` returns by itself (a drained PE), the
    /// others shut down gracefully; any other service that returns early is an error.
    public static func run(_ services: [any Service], logger: Logger,
                           mayFinish: (any Service & AnyObject)? = nil,
                           ready: () async throws -> ReadyLine,
                           cannotStart: (any Error) -> any Error = { $0 }) async throws {
        // Last in the group: the first to hear of a shutdown (STOPPING=1 before the others stop).
        let all = services + (SystemdNotify.socketPath == nil ? [] : [SystemdLifecycle(logger: logger)])
        let configurations = all.map { service -> ServiceGroupConfiguration.ServiceConfiguration in
            let finishes = mayFinish.map { ($0 as AnyObject) === (service as AnyObject) } ?? false
            return finishes ? .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup) : .init(service: service)
        }
        let group = ServiceGroup(configuration: .init(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        async let running: Void = group.run()
        do {
            try await ready().announce()
        } catch {
            throw cannotStart(error)   // leaving the scope cancels the group and waits for it
        }
        try await running
    }

    /// Calls `action` on every SIGHUP until the returned source is cancelled.
    public static func onHangUp(_ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        onSignal(SIGHUP, action)
    }

    /// Calls `action` on every `signalNumber` (SIGHUP, SIGUSR1, …) until the returned source is
    /// cancelled; the signal's default action (ending the process) is off meanwhile.
    public static func onSignal(_ signalNumber: Int32, _ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }

    /// The Component Status reporter when a monitor is given (`csp`, `cspInterval`).
    public static func statusReporter(_ monitor: Endpoint?, interval: SettingDuration?, sender: ComponentStatusReport.ComponentID, logger: Logger,
                                      snapshot: @escaping @Sendable () async -> ComponentStatusReporter.Snapshot) throws -> [any Service] {
        guard let monitor else { return [] }
        let every = interval?.amount ?? ComponentStatusReporter.defaultInterval
        guard every >= .milliseconds(10) else { throw ConfigurationError(setting: "cspInterval", "must be at least 10ms") }
        return [ComponentStatusReporter(target: monitor, interval: every, sender: sender, logger: logger, snapshot: snapshot)]
    }

    /// The status endpoint's service when an address is given.
    public static func statusService(_ endpoint: Endpoint?, registrar: Registrar? = nil, routes: [String: StatusServer.Route] = [:],
                                     metrics: @escaping @Sendable () -> String, logger: Logger) -> [any Service] {
        endpoint.map { [StatusService(endpoint: $0, registrar: registrar, metrics: metrics, routes: routes, logger: logger)] } ?? []
    }
}

/// A daemon that could not bind its listening addresses.
public struct CannotListenError: Error, CustomStringConvertible {
    public var addresses: [String]
    public var underlying: any Error
    public init(addresses: [String], underlying: any Error) {
        self.addresses = addresses
        self.underlying = underlying
    }
    public var description: String { "cannot listen on \(addresses.joined(separator: ", ")): \(underlying)" }
}
