import Gateway
import Logging
import NIOCore
import NIOEmbedded
@testable import GatewayService
import RSerPool

/// The gateway's frontends on an `EmbeddedEventLoop`, set up by the gateway's own accept
/// path: SOCKS5 and HTTP handshakes, refusals by the destination rules, authentication,
/// the handshake timeout — no sockets.
struct FrontendHarness {
    let loop = EmbeddedEventLoop()
    let context: GatewayContext
    let client: EmbeddedChannel

    /// The UDP sockets the gateway opened (SOCKS5 UDP ASSOCIATE), in order.
    let datagramSockets = DatagramSockets()

    init(_ kind: GatewaySettings.Kind, _ settings: GatewaySettings = GatewaySettings()) throws {
        var settings = settings
        settings.listenTransport = .tcp
        settings.telemetryInterval = SettingDuration(.zero)
        let sockets = datagramSockets, loop = self.loop
        context = try GatewayContext(configuration: try settings.configuration(kind), logger: Logger(label: "test"), loops: [loop]) { address, _, initializer in
            sockets.open(address, on: loop, initializer)
        }
        client = EmbeddedChannel(loop: loop)
        client.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 40_000)
        client.localAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 1080)
        try Gateway.accept(client, context: context)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1080)).wait()
    }

    func send(_ bytes: [UInt8]) throws { try client.writeInbound(ByteBuffer(bytes: bytes)) }
    func send(_ text: String) throws { try client.writeInbound(ByteBuffer(string: text)) }

    /// Every byte written to the client so far.
    func replies() throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try client.readOutbound(as: ByteBuffer.self) { bytes += Array(buffer: buffer) }
        return bytes
    }
}


/// UDP sockets as EmbeddedChannels: each is bound where asked, a port of port 0 becomes
/// 50000, 50001, …
final class DatagramSockets: @unchecked Sendable {
    private(set) var channels: [EmbeddedChannel] = []

    func open(_ address: SocketAddress, on loop: EmbeddedEventLoop,
              _ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let channel = EmbeddedChannel(loop: loop)
        var port = address
        if port.port == 0 { port.port = 50_000 + channels.count }
        let bound = port
        channel.localAddress = bound
        channels.append(channel)
        return initializer(channel).flatMap { channel.connect(to: bound) }.map { channel }
    }
}
