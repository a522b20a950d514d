import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore

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
                switch Self.dump(family: family, sequence: sequence) {
                case .success(let subflows): for subflow in subflows { byToken[subflow.token, default: []].append(subflow) }
                case .failure(let reason): failure = reason.text
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

    /// One sock_diag dump of established TCP sockets of a family.
    static func dump(family: UInt8, sequence: UInt32) -> Result<[SockDiag.Subflow], SockDiagFailure> {
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), SockDiag.netlinkProtocol)
        guard fd >= 0 else { return .failure(SockDiagFailure("socket: errno \(errno)")) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; u32 nl_pid; u32 nl_groups; }: the kernel.
        var address = [UInt8](repeating: 0, count: 12)
        address[0] = UInt8(AF_NETLINK)
        let request = SockDiag.dumpRequest(family: family, sequence: sequence)
        let sent = request.withUnsafeBytes { bytes in
            address.withUnsafeBytes { raw in
                sendto(fd, bytes.baseAddress, bytes.count, 0, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
        }
        guard sent == request.count else { return .failure(SockDiagFailure("sendto: errno \(errno)")) }
        var subflows: [SockDiag.Subflow] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // A dump ends with NLMSG_DONE; the bound keeps a misbehaving kernel from holding the thread.
        for _ in 0..<100_000 {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return .failure(SockDiagFailure("recv: errno \(errno)")) }
            switch SockDiag.parse(Array(buffer[0..<received])) {
            case .subflows(let part): subflows += part
            case .done: return .success(subflows)
            case .error(let code): return .failure(SockDiagFailure("netlink error \(code)"))
            }
        }
        return .success(subflows)
    }
}

struct SockDiagFailure: Error {
    var text: String
    init(_ text: String) { self.text = text }
}
