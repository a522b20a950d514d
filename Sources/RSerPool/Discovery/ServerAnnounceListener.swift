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

/// Joins a multicast group and hands every datagram, with its source, to a handler (which
/// decodes ASAP Server Announces or ENRP Presence).
final class MulticastListener: Sendable {
    private let channel: Channel

    private init(channel: Channel) { self.channel = channel }

    /// Listens for ASAP Server Announces.
    static func serverAnnounces(_ listening: AnnounceListening, group: EventLoopGroup, logger: Logger,
                                onAnnounce: @escaping @Sendable (ASAPServerAnnounce, SocketAddress) -> Void) -> EventLoopFuture<MulticastListener> {
        start(listening, group: group, logger: logger) { data, source in
            var buffer = data
            do {
                guard let decoded = try ASAPMessage.decode(from: &buffer), case .serverAnnounce(let announce) = decoded.message else {
                    logger.debug("ignored datagram on the announce group", metadata: ["from": "\(source.endpointDescription)"])
                    return
                }
                onAnnounce(announce, source)
            } catch {
                logger.debug("malformed datagram on the announce group", metadata: ["from": "\(source.endpointDescription)", "error": "\(error)"])
            }
        }
    }

    static func start(_ listening: AnnounceListening, group: EventLoopGroup, logger: Logger,
                      onDatagram: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void) -> EventLoopFuture<MulticastListener> {
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
                    try channel.pipeline.syncOperations.addHandler(DatagramHandler(onDatagram: onDatagram))
                }
            }
            .bind(to: any)
            .flatMap { channel in
                guard let multicast = channel as? MulticastChannel else {
                    return channel.close().flatMapThrowing { throw ChannelError.operationUnsupported }
                }
                return multicast.joinGroup(listening.group, device: device).map {
                    logger.info("listening on a multicast group", metadata: ["group": "\(listening.group.endpointDescription)"])
                    return MulticastListener(channel: channel)
                }
            }
    }

    func stop() {
        channel.close(promise: nil)
    }
}

private final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let onDatagram: @Sendable (ByteBuffer, SocketAddress) -> Void

    init(onDatagram: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void) { self.onDatagram = onDatagram }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        onDatagram(envelope.data, envelope.remoteAddress)
    }
}
