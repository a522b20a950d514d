import Logging
import ProcessSupport
import ServiceLifecycle

/// Under systemd (`Type=notify`): `WATCHDOG=1` every half `WatchdogSec=` while the daemon's
/// group runs, and `STOPPING=1` when its graceful shutdown begins. (`READY=1` comes with the
/// ready line.) Added to every daemon's group by ``DaemonRunner`` when `$NOTIFY_SOCKET` is set.
struct SystemdLifecycle: Service {
    let logger: Logger

    func run() async throws {
        let watchdog = SystemdNotify.watchdogInterval
        if let watchdog { logger.info("systemd watchdog", metadata: ["every": "\(watchdog) s"]) }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                guard let watchdog else {
                    try? await Task.sleep(nanoseconds: 3_600_000_000_000)
                    continue
                }
                SystemdNotify.send("WATCHDOG=1")
                try? await Task.sleep(nanoseconds: UInt64(watchdog * 1e9))
            }
        }
        SystemdNotify.send("STOPPING=1")
    }
}
