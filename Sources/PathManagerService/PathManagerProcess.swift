import Dispatch
import Foundation
import Logging
import NIOCore
import ProcessSupport
import RSerPool
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGTERM/SIGINT; the daemon's loop looks at it every turn.
private let stopRequested = Atomic<Bool>(false)

extension PathManagerDaemon {
    /// `edgepool paths run` as a library call: takes the namespace's paths over, serves
    /// `/metrics` and `/paths` (``PathManagerStatus``, JSON) on `settings.status`, prints `edgepool paths ready managing=…`, and manages
    /// the paths on this thread until SIGTERM/SIGINT (then hands them back to the kernel's PM).
    /// - Parameters:
    ///   - settings: the flags over the configuration file.
    ///   - metrics: the process's Prometheus exposition text, for `/metrics`.
    ///   - logger: where the path manager logs.
    public static func run(_ settings: PathManagerSettings, metrics: @escaping @Sendable () -> String,
                           logger: Logger = Logger(label: "edgepool.paths")) throws {
        let configuration = try settings.configuration()
        let daemon = try PathManagerDaemon(configuration: configuration, logger: logger)
        let summary = try daemon.start()
        if let status = settings.status {
            let latest = daemon.status
            // The daemon's loop holds this thread; the status server runs on NIO's.
            let started = DispatchSemaphore(value: 0)
            let failure = Mutex<(any Error)?>(nil)
            Task {
                do {
                    _ = try await StatusServer.start(on: status.socketAddress(), routes: [
                        "/metrics": { ("text/plain; version=0.0.4", metrics()) },
                        "/paths": { ("application/json", latest.json) },
                    ])
                } catch {
                    failure.withLock { $0 = error }
                }
                started.signal()
            }
            started.wait()
            if let error = failure.withLock({ $0 }) {
                daemon.run { true }   // hands the paths back at once
                throw CannotListenError(addresses: ["\(status)"], underlying: error)
            }
        }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        ReadyLine(daemon: "paths", ["managing": summary,
                                    "picked_up": configuration.kernelManager == .userspace ? "\(daemon.pickedUp)" : nil]).announce()
        // Under systemd: WATCHDOG=1 from the loop (it turns at least every 20 ms), STOPPING=1
        // before the paths are handed back.
        let watchdog = SystemdNotify.watchdogInterval.map { TimeAmount.nanoseconds(Int64($0 * 1e9)) }
        var nextWatchdog = NIODeadline.now()
        daemon.run {
            if let watchdog, NIODeadline.now() >= nextWatchdog {
                SystemdNotify.send("WATCHDOG=1")
                nextWatchdog = NIODeadline.now() + watchdog
            }
            guard stopRequested.load(ordering: .relaxed) else { return false }
            SystemdNotify.send("STOPPING=1")
            return true
        }
    }
}
