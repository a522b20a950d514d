import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import RSerPool
import RSerPoolWire

/// Registrar associations for a driver under test: every connect gets an EmbeddedChannel on
/// the test's loop (with the driver's own pipeline), or fails for a refusing port.
final class EmbeddedRegistrars: Sendable {
    let loop: EmbeddedEventLoop
    private let opened = NIOLockedValueBox<[(SocketAddress, EmbeddedChannel)]>([])
    private let refusing: Set<Int>

    init(loop: EmbeddedEventLoop, refusing: Set<Int> = []) {
        self.loop = loop
        self.refusing = refusing
    }

    /// The connector to give the driver.
    var connector: RegistrarConnector {
        { [opened, refusing, loop] address, _, _, initializer in
            guard !refusing.contains(address.port ?? 0) else { return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(1))) }
            let channel = EmbeddedChannel(loop: loop)
            opened.withLockedValue { $0.append((address, channel)) }
            return initializer(channel).flatMap { channel.connect(to: address) }.map { channel }
        }
    }

    /// Every association opened, in order, with the address it was opened to.
    var associations: [(SocketAddress, EmbeddedChannel)] { opened.withLockedValue { $0 } }

    /// The ASAP messages the driver wrote on `channel` since the last call.
    func written(on channel: EmbeddedChannel) throws -> [ASAPMessage] {
        var messages: [ASAPMessage] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            var copy = buffer
            while let decoded = try ASAPMessage.decode(from: &copy) { messages.append(decoded.message) }
        }
        return messages
    }
}

/// The registrars' loopback addresses on `ports`.
func loopbackRegistrars(_ ports: [Int]) throws -> RegistrarList {
    RegistrarList(try ports.map { try SocketAddress(ipAddress: "127.0.0.1", port: $0) }, transport: .tcp)
}
