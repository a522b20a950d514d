import CalcApp
import Foundation
import Logging
import ProcessSupport
import RSerPool
import ServiceLifecycle

/// `edgepool calcapp-pe` as a library call: one CalcApp PE and its status endpoint, run until
/// SIGTERM/SIGINT (last cookies to every pool user, deregistration) or until a drain, which
/// SIGUSR1 starts, has moved every job to other PEs.
public enum CalcAppPoolElementDaemon {
    /// Runs until a shutdown signal; prints `edgepool calcapp-pe ready id=… user=… pool=… capacity=… max-jobs=…`
    /// and returns what the PE did.
    /// - Parameters:
    ///   - settings: the flags over the configuration file.
    ///   - metrics: the process's Prometheus exposition text, for `/metrics`.
    ///   - logger: where the PE logs.
    public static func run(_ settings: CalcAppPoolElementSettings, metrics: @escaping @Sendable () -> String,
                           logger: Logger = Logger(label: "edgepool.calcapp.pe")) async throws -> CalcAppPoolElementStatistics {
        let configuration = try settings.configuration()
        let element = CalcAppPoolElement(configuration: configuration, logger: logger)
        let services: [any Service] = [element] + DaemonRunner.statusService(settings.status, metrics: metrics, logger: logger)
        let rate = configuration.drainRate
        let drainSignal = DaemonRunner.onSignal(SIGUSR1) { Task { await element.drain(sessionsPerSecond: rate) } }
        defer { drainSignal.cancel() }
        try await DaemonRunner.run(services, logger: logger, mayFinish: element, ready: {
            let address = try await element.userAddress
            return ReadyLine(daemon: "calcapp-pe", [
                "id": "\(configuration.identifier)", "user": address.endpointDescription, "pool": "\(configuration.poolHandle)",
                "capacity": formatRate(configuration.server.capacity), "max-jobs": "\(configuration.server.maxJobs)",
            ])
        })
        return try await element.statistics()
    }
}
