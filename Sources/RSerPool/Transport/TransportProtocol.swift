import NIOCore
import NIOPosix
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

/// The byte-stream transport that carries ASAP between PEs/PUs and registrars.
///
/// The RFCs use SCTP; this kernel (and many others) has none. ASAP messages frame themselves
/// by their length field, so they run over TCP, and over MPTCP, which brings back the
/// multi-homing SCTP gave. New transports (SCTP where available) slot in here.
public enum TransportProtocol: String, Sendable, CaseIterable, Codable {
    /// MPTCP, falling back to plain TCP when the kernel or the peer lacks it (the default).
    case mptcp
    /// Plain TCP.
    case tcp
}

/// Binding and connecting with the chosen transport.
public enum StreamTransport {
    /// Binds a listener. With `.mptcp` it tries an MPTCP socket first and falls back to TCP if
    /// the kernel refuses (no MPTCP support); TCP_NODELAY is set again on accepted channels
    /// because enabling MPTCP drops it. `reusePort` lets several listeners (one per event
    /// loop) share the address, the kernel spreading connections over them.
    public static func bind(
        _ address: SocketAddress, transport: TransportProtocol, group: EventLoopGroup, backlog: Int32 = 256, reusePort: Bool = false,
        serverInitializer: (@Sendable (Channel) -> EventLoopFuture<Void>)? = nil,
        childInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) async throws -> (channel: Channel, transport: TransportProtocol) {
        func bootstrap(_ mptcp: Bool) -> ServerBootstrap {
            ServerBootstrap(group: group)
                .serverChannelInitializer { channel in serverInitializer?(channel) ?? channel.eventLoop.makeSucceededVoidFuture() }
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: reusePort ? 1 : 0)
                .serverChannelOption(.backlog, value: backlog)
                .enableMPTCP(mptcp)
                .childChannelInitializer { channel in
                    channel.setOption(.tcpOption(.tcp_nodelay), value: 1).flatMap { childInitializer(channel) }
                }
        }
        if transport == .mptcp {
            do {
                return (try await bootstrap(true).bind(to: address).get(), .mptcp)
            } catch {
                // EPROTONOSUPPORT / ENOPROTOOPT: the kernel has no MPTCP. Fall back.
            }
        }
        return (try await bootstrap(false).bind(to: address).get(), .tcp)
    }

    /// Connects to `address`; with `.mptcp` an MPTCP socket that falls back to TCP if the
    /// kernel has no MPTCP (and, by the protocol itself, if the peer does not speak it).
    public static func connect(
        to address: SocketAddress, transport: TransportProtocol, group: EventLoopGroup,
        timeout: TimeAmount = .seconds(3),
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        @Sendable func bootstrap(_ mptcp: Bool) -> ClientBootstrap {
            ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .enableMPTCP(mptcp)
                .channelInitializer { channel in
                    channel.setOption(.tcpOption(.tcp_nodelay), value: 1).flatMap { initializer(channel) }
                }
        }
        guard transport == .mptcp else { return bootstrap(false).connect(to: address) }
        let loop = group.next()
        return bootstrap(true).connect(to: address).flatMapError { error in
            if let io = error as? IOError, io.errnoCode == EPROTONOSUPPORT || io.errnoCode == ENOPROTOOPT || io.errnoCode == EINVAL {
                return bootstrap(false).connect(to: address)
            }
            return loop.makeFailedFuture(error)
        }
    }

    /// Whether a connected channel really uses MPTCP (false: plain TCP or a fallback).
    /// Reads `TCP_IS_MPTCP` (Linux ≥ 5.16).
    public static func isMPTCP(_ channel: Channel) -> EventLoopFuture<Bool> {
        guard let provider = channel as? SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(false) }
        return provider.unsafeGetSocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: 43)).map { (value: CInt) in value != 0 }
            .recover { _ in false }
    }
}

extension TransportAddress {
    /// The NIO socket address of the first address and the port.
    public func socketAddress() throws -> SocketAddress {
        guard let first = addresses.first else { throw SocketAddressError.unsupported }
        return try first.socketAddress(port: Int(port))
    }

    /// A TCP transport parameter for a bound socket address.
    public init?(tcp address: SocketAddress, transportUse: TransportUse = .dataOnly) {
        guard let ip = IPAddress(address), let port = address.port else { return nil }
        self = .tcp(ip, port: UInt16(port), transportUse: transportUse)
    }
}

extension SocketAddress {
    /// "127.0.0.1:3863" or "[::1]:3863": how operators write addresses.
    public var endpointDescription: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        return self.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
