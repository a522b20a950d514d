import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PathManager
import PathManagerService

#if canImport(Glibc)
import Glibc
#endif

/// Every `interval`, lists the kernel's TCP sockets through sock_diag netlink (one dump for
/// all connections, with tcp_info and the MPTCP subflow info that CAP_NET_ADMIN sees), and
/// hands each open MPTCP connection its subflows: addresses and bytes per subflow. Without
/// the capability the dump carries no MPTCP tokens, and only subflow counts (MPTCP_INFO)
/// are recorded.
final class SubflowSampler: Sendable {
    private let interval: TimeAmount
    private let registry: ConnectionRegistry
    private let logger: Logger
    private let running = NIOLockedValueBox(true)

    init(interval: TimeAmount, registry: ConnectionRegistry, logger: Logger) {
        self.interval = interval
        self.registry = registry
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "edgepool-subflow-sampler"
        thread.start()
    }

    func stop() { running.withLockedValue { $0 = false } }

    private func loop() {
        var warned = false
        var sequence: UInt32 = 0
        while running.withLockedValue({ $0 }) {
            usleep(useconds_t(max(interval.nanoseconds / 1000, 10_000)))
            let connections = registry.mptcp
            guard !connections.isEmpty else { continue }
            var byToken: [UInt32: [SockDiag.Subflow]] = [:]
            var failure: String?
            for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
                sequence &+= 1
                switch SockDiagDump.subflows(family: family, sequence: sequence) {
                case .success(let subflows): for subflow in subflows { byToken[subflow.token, default: []].append(subflow) }
                case .failure(let reason): failure = reason.description
                }
            }
            if let failure, !warned {
                warned = true
                logger.warning("sock_diag unavailable: per-subflow telemetry off, subflow counts only", metadata: ["error": "\(failure)"])
            }
            for entry in connections {
                let found = entry.tokens.map { side, token in (side, byToken[token] ?? []) }
                let box = entry.connection
                entry.loop.execute {
                    for (side, subflows) in found where !subflows.isEmpty { box.value.observe(side, subflows: subflows) }
                    box.value.sampleCounts()
                }
            }
        }
    }
}
