import Foundation
import ProcessSupport
import NIOCore
import NIOPosix

/// The floor of a SwiftNIO proxy, for the gateway benchmark: a plain TCP forwarder with
/// nothing but two glued channels (no limits, policy, telemetry, logging or timers). What
/// EdgePool adds over this is EdgePool's own cost; what this adds over the direct connection
/// is the event-loop design's.
enum BenchNIOForwarder {
    /// Forwards one side's reads to the other; pauses reading while the other side's write
    /// buffer is full.
    final class Glue: ChannelDuplexHandler {
        typealias InboundIn = NIOAny
        typealias OutboundIn = NIOAny
        var partner: Glue?
        private var context: ChannelHandlerContext?
        private var pendingRead = false

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil; partner = nil }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.context?.write(data, promise: nil) }
        func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }
        func channelInactive(context: ChannelHandlerContext) { partner?.context?.close(promise: nil) }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable { partner?.resumeRead() }
        }

        func read(context: ChannelHandlerContext) {
            if partner?.context?.channel.isWritable ?? true { context.read() } else { pendingRead = true }
        }

        private func resumeRead() {
            guard pendingRead, let context else { return }
            pendingRead = false
            context.read()
        }
    }

    /// Listens on an ephemeral loopback port, prints it, forwards every connection to
    /// `origin`; runs until killed.
    static func serveUntilKilled(origin: Int) throws -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: origin)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { client in
                client.setOption(.autoRead, value: false).flatMap {
                    ClientBootstrap(group: client.eventLoop)
                        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .connect(to: target)
                }.flatMapThrowing { server in
                    // Both channels are on the client's event loop.
                    let a = Glue(), b = Glue()
                    a.partner = b
                    b.partner = a
                    try client.pipeline.syncOperations.addHandler(a)
                    try server.pipeline.syncOperations.addHandler(b)
                }.flatMap {
                    client.setOption(.autoRead, value: true)
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        ReadyLine(daemon: "bench-forwarder", ["listen": "127.0.0.1:\(channel.localAddress?.port ?? 0)", "kind": "nio"]).announce()
        fflush(nil)
        while true { sleep(3600) }
    }
}
