import Foundation
import Logging
import NIOConcurrencyHelpers
import PathManager
import RSerPool
import ServiceLifecycle

/// The path manager inside another daemon (`edgepool gateway … --path …`): the same
/// decisions and actions as `edgepool paths run`, for the namespace the daemon runs in, on a
/// thread of its own, as a `Service` of the daemon's group — started with it, and on the
/// group's graceful shutdown stopped and the paths handed back to the kernel's PM.
public final class EmbeddedPathManager: Service, Sendable {
    /// The daemon's thread owns the path manager once it runs; until then `init` does.
    private struct Owned: @unchecked Sendable { let daemon: PathManagerDaemon }
    private let owned: Owned
    private let stopping = NIOLockedValueBox(false)
    /// "c1 10.78.1.1 id 1 active, …" — what it manages, as `paths run`'s ready line says it.
    public let summary: String
    /// `/paths` for the daemon's status endpoint.
    public let statusRoute: StatusServer.Route

    /// Takes the namespace's paths over now (so that the daemon's ready line comes after it).
    /// - Throws: `PathManagerError` (no CAP_NET_ADMIN, a bad path, a foreign qdisc for a cap)
    ///   or a netlink error, with what to do.
    public init(configuration: PathManagerConfiguration, logger: Logger) throws {
        let daemon = try PathManagerDaemon(configuration: configuration, logger: logger)
        summary = try daemon.start()
        owned = Owned(daemon: daemon)
        let latest = daemon.status
        statusRoute = { ("application/json", latest.json) }
    }

    /// Hands the paths back at once, for a daemon that fails to start after this was made
    /// (``run()`` is then never called).
    public func handBack() {
        owned.daemon.run { true }
    }

    public func run() async throws {
        let owned = self.owned, stopping = self.stopping
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                owned.daemon.run { stopping.withLockedValue { $0 } }
                finished.resume()
            }
            thread.name = "edgepool-paths"
            thread.start()
            Task {
                try? await gracefulShutdown()
                stopping.withLockedValue { $0 = true }
            }
        }
    }
}
