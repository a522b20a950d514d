import NIOCore

/// First in a pipeline: counts the payload bytes read from the socket.
final class ByteCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private(set) var bytesRead: UInt64 = 0
    /// When the last byte arrived (for the "carried data after a path loss" test).
    private(set) var lastRead: NIODeadline = .now()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytesRead += UInt64(unwrapInboundIn(data).readableBytes)
        lastRead = .now()
        context.fireChannelRead(data)
    }
}
