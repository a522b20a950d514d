import NIOCore
import NIOPosix
import RSerPool

/// A TCP relay on loopback that delays every byte by a fixed one-way delay in each direction:
/// the network distance of an edge or cloud PE, when the experiment runs on one machine.
/// (In network namespaces the testbed's link emulation does this instead.)
public final class DelayRelay: Sendable {
    private let listener: Channel
    public var localAddress: SocketAddress? { listener.localAddress }

    private init(listener: Channel) { self.listener = listener }

    /// Listens on `address` and relays each connection to `target`, delaying both directions.
    public static func start(on address: SocketAddress, to target: SocketAddress, delay: TimeAmount,
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> DelayRelay {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(to: target)
                    .flatMap { outbound in
                        let toTarget = DelayingForwarder(peer: outbound, delay: delay)
                        let toClient = DelayingForwarder(peer: inbound, delay: delay)
                        return inbound.pipeline.addHandler(toTarget).flatMap {
                            outbound.pipeline.addHandler(toClient)
                        }.map {
                            inbound.read()
                        }
                    }
            }
            .bind(to: address).get()
        return DelayRelay(listener: listener)
    }

    public func stop() async { try? await listener.close() }

    /// Stops listening without waiting (for crash simulation).
    public func close() { listener.close(promise: nil) }
}

/// Forwards what one side reads to the other side after `delay`; closing propagates (after
/// the data in flight).
final class DelayingForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let peer: Channel
    private let delay: TimeAmount

    init(peer: Channel, delay: TimeAmount) {
        self.peer = peer
        self.delay = delay
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let peer = self.peer
        if delay == .zero {
            peer.writeAndFlush(buffer, promise: nil)
        } else {
            context.eventLoop.scheduleTask(in: delay) { peer.writeAndFlush(buffer, promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.read() }

    func channelInactive(context: ChannelHandlerContext) {
        let peer = self.peer
        context.eventLoop.scheduleTask(in: delay) { peer.close(promise: nil) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
