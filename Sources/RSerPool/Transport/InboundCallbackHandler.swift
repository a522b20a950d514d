import NIOCore

/// Hands a channel's decoded messages and its end to callbacks, on the channel's event loop.
/// The glue between a pipeline and a loop-confined driver (a PE's registrar association, a
/// PU's, a CalcApp session).
public final class InboundCallbackHandler<Inbound>: ChannelInboundHandler {
    public typealias InboundIn = Inbound
    private let onMessage: (Inbound) -> Void
    private let onClose: () -> Void
    private let onIdle: () -> Void
    private let onError: (any Error) -> Void

    /// `onIdle`: an `AssociationReader` below found the association idle. `onError`: an
    /// error reached the end of the pipeline (a failed TLS handshake, a reset) — the channel
    /// is closed after it.
    public init(onMessage: @escaping (Inbound) -> Void, onClose: @escaping () -> Void, onIdle: @escaping () -> Void = {},
                onError: @escaping (any Error) -> Void = { _ in }) {
        self.onMessage = onMessage
        self.onClose = onClose
        self.onIdle = onIdle
        self.onError = onError
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

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        onError(error)
        context.close(promise: nil)
    }
}
