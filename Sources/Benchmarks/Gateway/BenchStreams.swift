import Dispatch
import Foundation
import ProcessSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The memory benchmark's origin (NIO, for thousands of connections): accepts, then on
/// request streams 16 KiB writes to every connection while it is writable.
final class BenchStreamTarget: Sendable {
    let port: Int
    private let server: Channel
    private let channels = NIOLockedValueBox<[Channel]>([])

    init(group: EventLoopGroup) throws {
        let channels = self.channels
        server = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channels.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Streamer()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = server.localAddress?.port ?? 0
    }

    var accepted: Int { channels.withLockedValue { $0.count } }

    func startStreaming() { broadcast(true) }
    func stopStreaming() { broadcast(false) }

    private func broadcast(_ on: Bool) {
        for channel in channels.withLockedValue({ $0 }) {
            channel.pipeline.fireUserInboundEventTriggered(on ? Streamer.Start() : Streamer.Stop())
        }
    }

    /// Serves until killed: prints a ready line (`listen=127.0.0.1:PORT`), then "accepted N" as
    /// connections arrive; SIGUSR1 starts streaming, SIGUSR2 stops it.
    static func serveUntilKilled() throws -> Never {
        let target = try BenchStreamTarget(group: MultiThreadedEventLoopGroup.singleton)
        ReadyLine(daemon: "bench-stream-target", ["listen": "127.0.0.1:\(target.port)", "transport": "tcp"]).announce()
        signal(SIGUSR1, SIG_IGN)
        signal(SIGUSR2, SIG_IGN)
        let start = DispatchSource.makeSignalSource(signal: SIGUSR1)
        start.setEventHandler { target.startStreaming() }
        start.resume()
        let stop = DispatchSource.makeSignalSource(signal: SIGUSR2)
        stop.setEventHandler { target.stopStreaming() }
        stop.resume()
        var reported = -1
        while true {
            let count = target.accepted
            if count != reported {
                print("accepted \(count)")
                fflush(nil)
                reported = count
            }
            usleep(100_000)
        }
    }

    func stop() {
        try? server.close().wait()
        for channel in channels.withLockedValue({ $0 }) { channel.close(promise: nil) }
    }

    private final class Streamer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        struct Start {}
        struct Stop {}
        private var streaming = false
        private let chunk = ByteBuffer(repeating: 0x5A, count: 16 * 1024)

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is Start { streaming = true; pump(context) }
            if event is Stop { streaming = false }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

        private func pump(_ context: ChannelHandlerContext) {
            while streaming && context.channel.isWritable {
                context.write(wrapOutboundOut(chunk), promise: nil)
            }
            context.flush()
        }
    }
}

/// Thousands of clients that read and discard what comes, counting bytes.
final class BenchStreamClients: Sendable {
    private let channels: [Channel]
    private let received = NIOLockedValueBox(0)

    init(port: Int, count: Int, group: EventLoopGroup) throws {
        let received = self.received
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Counter(received: received)) }
        }
        var channels: [Channel] = []
        // In batches: a burst of 10,000 SYNs would overflow the listener's backlog.
        for start in stride(from: 0, to: count, by: 250) {
            let batch = (start..<min(start + 250, count)).map { _ in bootstrap.connect(host: "127.0.0.1", port: port) }
            for future in batch { channels.append(try future.wait()) }
        }
        self.channels = channels
    }

    var bytesReceived: Int { received.withLockedValue { $0 } }

    func close() {
        for channel in channels { channel.close(promise: nil) }
    }

    private final class Counter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var pending = 0
        private let received: NIOLockedValueBox<Int>
        init(received: NIOLockedValueBox<Int>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += unwrapInboundIn(data).readableBytes
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            let count = pending
            pending = 0
            received.withLockedValue { $0 += count }
        }
    }
}
