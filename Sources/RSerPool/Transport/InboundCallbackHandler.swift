import NIOCore

/// Hands a channel's decoded messages and its end to callbacks, on the channel's event loop.
/// The glue between a pipeline and a loop-confined driver (a PE's registrar association, a
/// PU's, a CalcApp session).
public final class InboundCallbackHandler<Inbound>: ChannelInboundHandler {
    public typealias InboundIn = Inbound
    private let onMessage: (Inbound) -> Void
    private let onClose: () -> Void
    private let onIdle: () -> Void

    /// `onIdle`: an `AssociationReader` below found the association idle.
    public init(onMessage: @escaping (Inbound) -> Void, onClose: @escaping () -> Void, onIdle: @escaping () -> Void = {}) {
        self.onMessage = onMessage
        self.onClose = onClose
        self.onIdle = onIdle
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? AssociationGuardEvent {
            if event == .idle { onIdle() }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) { onMessage(unwrapInboundIn(data)) }

    public func channelInactive(context: ChannelHandlerContext) {
        onClose()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
