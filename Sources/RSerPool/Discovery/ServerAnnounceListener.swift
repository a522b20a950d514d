import Logging
import NIOCore
import NIOPosix
import RSerPoolWire

/// Where a PE or PU listens for registrars' Server Announces.
public struct AnnounceListening: Sendable {
    /// The ASAP announce group and port: 239.0.0.50:3863 (IPv6: [ff08::50]:3863).
    public var group: SocketAddress
    /// The local address of the interface to join the group on; nil: the kernel's choice.
    public var interface: IPAddress?

    public init(group: SocketAddress = ServerAnnounceConfiguration.defaultIPv4Group, interface: IPAddress? = nil) {
        self.group = group
        self.interface = interface
    }
}

/// Joins the announce group and hands every decoded Server Announce, with its source, to a
/// callback. Other datagrams are dropped with a debug log line.
final class ServerAnnounceListener: Sendable {
    private let channel: Channel

    private init(channel: Channel) { self.channel = channel }

    static func start(_ listening: AnnounceListening, group: EventLoopGroup, logger: Logger,
                      onAnnounce: @escaping @Sendable (ASAPServerAnnounce, SocketAddress) -> Void) -> EventLoopFuture<ServerAnnounceListener> {
        let loop = group.next()
        let any: SocketAddress
        let device: NIONetworkDevice?
        do {
            any = try SocketAddress(ipAddress: listening.group.protocol == .inet6 ? "::" : "0.0.0.0", port: listening.group.port ?? 3863)
            device = try listening.interface.flatMap { interface in
                try System.enumerateDevices().first { $0.address.flatMap(IPAddress.init) == interface }
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
        return DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AnnounceHandler(logger: logger, onAnnounce: onAnnounce))
                }
            }
            .bind(to: any)
            .flatMap { channel in
                guard let multicast = channel as? MulticastChannel else {
                    return channel.close().flatMapThrowing { throw ChannelError.operationUnsupported }
                }
                return multicast.joinGroup(listening.group, device: device).map {
                    logger.info("listening for server announces", metadata: ["group": "\(listening.group.endpointDescription)"])
                    return ServerAnnounceListener(channel: channel)
                }
            }
    }

    func stop() {
        channel.close(promise: nil)
    }
}

private final class AnnounceHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let logger: Logger
    private let onAnnounce: @Sendable (ASAPServerAnnounce, SocketAddress) -> Void

    init(logger: Logger, onAnnounce: @escaping @Sendable (ASAPServerAnnounce, SocketAddress) -> Void) {
        self.logger = logger
        self.onAnnounce = onAnnounce
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        do {
            var buffer = envelope.data
            guard let decoded = try ASAPMessage.decode(from: &buffer), case .serverAnnounce(let announce) = decoded.message else {
                logger.debug("ignored datagram on the announce group", metadata: ["from": "\(envelope.remoteAddress.endpointDescription)"])
                return
            }
            onAnnounce(announce, envelope.remoteAddress)
        } catch {
            logger.debug("malformed datagram on the announce group", metadata: ["from": "\(envelope.remoteAddress.endpointDescription)", "error": "\(error)"])
        }
    }
}
