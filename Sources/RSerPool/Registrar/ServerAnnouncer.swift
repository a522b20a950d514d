import Logging
import NIOCore
import NIOPosix
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

/// Where and how often a registrar multicasts its Server Announce (RFC 5352 §3.6).
public struct ServerAnnounceConfiguration: Sendable {
    /// The ASAP announce group: 239.0.0.50:3863 (IPv6: [ff08::50]:3863).
    public var group: SocketAddress
    /// Reference default: every second.
    public var interval: TimeAmount = .seconds(1)
    /// The local IPv4 address of the interface to send on (IP_MULTICAST_IF); nil: the kernel's choice.
    public var interface: IPAddress?
    /// Multicast TTL; 1 keeps announces on the local link.
    public var ttl: Int32 = 1

    public init(group: SocketAddress, interface: IPAddress? = nil) {
        self.group = group
        self.interface = interface
    }

    public static let defaultIPv4Group = try! SocketAddress(ipAddress: "239.0.0.50", port: 3863)
    public static let defaultIPv6Group = try! SocketAddress(ipAddress: "ff08::50", port: 3863)
    /// The ENRP Presence group: 239.0.0.51:9901 (IPv6: [ff08::51]:9901).
    public static let defaultENRPIPv4Group = try! SocketAddress(ipAddress: "239.0.0.51", port: 9901)
    public static let defaultENRPIPv6Group = try! SocketAddress(ipAddress: "ff08::51", port: 9901)
}

/// Sends a datagram to a multicast group at a fixed interval: a registrar's ASAP Server
/// Announce, or its ENRP Presence.
final class MulticastAnnouncer: Sendable {
    private let channel: Channel
    private let task: RepeatedTask

    private init(channel: Channel, task: RepeatedTask) {
        self.channel = channel
        self.task = task
    }

    /// `payload` is asked for the bytes at every interval (ENRP Presence carries a checksum
    /// that changes); it runs on the announcer's event loop.
    static func start(configuration: ServerAnnounceConfiguration, group: EventLoopGroup, logger: Logger,
                      payload: @escaping @Sendable () -> EventLoopFuture<ByteBuffer>) async throws -> MulticastAnnouncer {
        let isIPv6 = configuration.group.protocol == .inet6
        let local = try SocketAddress(ipAddress: isIPv6 ? "::" : "0.0.0.0", port: 0)
        let channel = try await DatagramBootstrap(group: group).bind(to: local).get()
        if !isIPv6 {
            try await channel.setOption(.ipOption(.ip_multicast_ttl), value: Int(configuration.ttl)).get()
            if case .v4(let address)? = configuration.interface {
                try await channel.setOption(.ipOption(.ip_multicast_if), value: Int(CInt(bitPattern: address.bigEndian))).get()
            }
        }
        let destination = configuration.group
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: configuration.interval) { _ in
            payload().flatMap { bytes in
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: bytes))
            }.whenFailure { error in
                logger.debug("multicast announce not sent", metadata: ["group": "\(destination)", "error": "\(error)"])
            }
        }
        logger.info("announcing", metadata: ["group": "\(destination.endpointDescription)", "interval": "\(configuration.interval)"])
        return MulticastAnnouncer(channel: channel, task: task)
    }

    func stop() async throws {
        task.cancel()
        try await channel.close()
    }
}
