import Gateway
import NIOCore

/// A client whose destination is fixed by the configuration: reverse proxy (backends from a
/// list or a pool) and an entry gateway with a fixed forward. Opens the upstream as soon as
/// the client connects; bytes the client sends meanwhile are held (at most one read).
final class ForwardFrontend: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var held = ByteBuffer()
    private var clientClosedInput = false
    private let connection: GatewayConnection
    private let gateway: GatewayContext

    init(connection: GatewayConnection, gateway: GatewayContext) {
        self.connection = connection
        self.gateway = gateway
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.inspectClient()
        context.fireChannelActive()
        gateway.openFixedUpstream(for: connection).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                let inputClosed = self.clientClosedInput
                RelayHandler.takeOver(from: context, upstream: upstream, connection: self.connection, clientEarlyData: self.held,
                                      idleSweep: self.gateway.idleSweep(on: context.eventLoop))
                if inputClosed { context.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            case .failure(let error):
                let failure = UpstreamError.from(error, target: self.connection.destination)
                self.connection.fail(failure.outcome, failure.detail)
                self.gateway.logger.info("no upstream for a client", metadata: ["id": "\(self.connection.id)", "destination": "\(self.connection.destination)",
                                                                                 "error": "\(failure.detail)"])
                context.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        held.writeBuffer(&buffer)
    }

    func read(context: ChannelHandlerContext) {
        // One read's worth is held until the upstream stands; no more.
        if held.readableBytes == 0 { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            clientClosedInput = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
