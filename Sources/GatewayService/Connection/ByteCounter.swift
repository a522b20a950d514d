import NIOCore

/// First in a pipeline: counts the payload bytes read from the socket.
final class ByteCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private(set) var bytesRead: UInt64 = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytesRead += UInt64(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }
}
