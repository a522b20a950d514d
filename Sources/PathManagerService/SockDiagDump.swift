import PathManager

#if canImport(Glibc)
import Glibc
#endif

/// One sock_diag dump of the namespace's established MPTCP subflows (TCP sockets with the
/// MPTCP ULP). The tokens and address ids come only with CAP_NET_ADMIN; without it the
/// list is empty.
public enum SockDiagDump {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The subflows of one family (AF_INET 2, AF_INET6 10). A dump ends with NLMSG_DONE; a
    /// bound on the datagrams read keeps a misbehaving kernel from holding the caller.
    public static func subflows(family: UInt8, sequence: UInt32 = 1) -> Result<[SockDiag.Subflow], Failure> {
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), SockDiag.netlinkProtocol)
        guard fd >= 0 else { return .failure(Failure("socket: errno \(errno)")) }
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
        guard sent == request.count else { return .failure(Failure("sendto: errno \(errno)")) }
        var subflows: [SockDiag.Subflow] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        for _ in 0..<100_000 {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return .failure(Failure("recv: errno \(errno)")) }
            switch SockDiag.parse(Array(buffer[0..<received])) {
            case .subflows(let part): subflows += part
            case .done: return .success(subflows)
            case .error(let code): return .failure(Failure("netlink error \(code)"))
            }
        }
        return .success(subflows)
    }

    /// Both families' subflows; the first failure if a dump failed.
    public static func allSubflows() -> Result<[SockDiag.Subflow], Failure> {
        var all: [SockDiag.Subflow] = []
        for (index, family) in [UInt8(AF_INET), UInt8(AF_INET6)].enumerated() {
            switch subflows(family: family, sequence: UInt32(index + 1)) {
            case .success(let part): all += part
            case .failure(let failure): return .failure(failure)
            }
        }
        return .success(all)
    }
}
