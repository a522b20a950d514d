import Gateway
import NIOCore

/// What the kernel says about one connected socket: is it MPTCP, did it fall back, and how
/// many subflows does it have (`SO_PROTOCOL`, `TCP_IS_MPTCP`, `MPTCP_INFO`).
struct MPTCPSocketInfo: Sendable {
    var transport: ConnectionRecord.Transport
    /// The connection's local token (matches its subflows in sock_diag); nil unless MPTCP.
    var token: UInt32?
    /// Subflows open now (initial included).
    var openSubflows: Int

    /// A socket made as plain TCP.
    static let plainTCP = MPTCPSocketInfo(transport: .tcp, token: nil, openSubflows: 0)

    static let ipprotoMPTCP: CInt = 262
    static let solMPTCP = NIOBSDSocket.OptionLevel(rawValue: 284)
    static let mptcpInfo = NIOBSDSocket.Option(rawValue: 1)
    static let tcpIsMPTCP = NIOBSDSocket.Option(rawValue: 43)
    static let soProtocol = NIOBSDSocket.Option(rawValue: 38)

    /// `struct mptcp_info` as Linux 6.x fills it (96 bytes; older kernels fill less).
    struct RawInfo: Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Reads the socket's state; must run on the channel's event loop.
    static func read(_ channel: Channel) -> MPTCPSocketInfo {
        guard let provider = channel as? SocketOptionProvider else { return MPTCPSocketInfo(transport: .tcp, token: nil, openSubflows: 0) }
        // On the channel's loop the provider completes the future at once.
        func option<T: Sendable>(_ level: NIOBSDSocket.OptionLevel, _ name: NIOBSDSocket.Option, as: T.Type) -> T? {
            var result: T?
            let future: EventLoopFuture<T> = provider.unsafeGetSocketOption(level: level, name: name)
            future.assumeIsolated().whenSuccess { result = $0 }
            return result
        }
        guard option(.socket, soProtocol, as: CInt.self) == ipprotoMPTCP else {
            return MPTCPSocketInfo(transport: .tcp, token: nil, openSubflows: 0)
        }
        guard option(.tcp, tcpIsMPTCP, as: CInt.self) == 1, let raw = option(solMPTCP, mptcpInfo, as: RawInfo.self) else {
            return MPTCPSocketInfo(transport: .fallback, token: nil, openSubflows: 0)
        }
        return withUnsafeBytes(of: raw.words) { bytes in
            let additional = Int(bytes[0])
            let token = bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
            // mptcpi_subflows_total (Linux ≥ 6.8) counts the initial subflow while it lives;
            // older kernels leave it 0: count the initial one as open.
            let total = Int(bytes[80])
            return MPTCPSocketInfo(transport: .mptcp, token: token, openSubflows: total > 0 ? total : additional + 1)
        }
    }
}
