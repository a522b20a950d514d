import Gateway
import NIOCore
import NIOSSL
import RSerPool

/// On the entry's connection to the exit: reads the exit's one-byte status (a SOCKS5 reply
/// code) and holds whatever follows it until the relay takes over (``release(from:)``).
final class ExitStatusReader: ChannelDuplexHandler, RemovableChannelHandler, UpstreamHold {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private enum State { case awaiting, holding, failed }
    private var state = State.awaiting
    private var held: ByteBuffer?
    private let connection: GatewayConnection
    /// Completed with the status when the caller waits for it (SOCKS on the entry).
    let promise: EventLoopPromise<Void>?

    init(connection: GatewayConnection, awaitingPromise: EventLoopPromise<Void>?) {
        self.connection = connection
        self.promise = awaitingPromise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .awaiting:
            guard let status = buffer.readInteger(as: UInt8.self).map(SOCKSReplyCode.init(rawValue:)) else { return }
            if status == .succeeded {
                promise?.succeed()
                if relayReady {
                    if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                    return
                }
                state = .holding
                if buffer.readableBytes > 0 { held = buffer }
            } else {
                state = .failed
                let error = UpstreamError(kind: status == .notAllowedByRuleset ? .refusedByPolicy : .unreachable,
                                          detail: "exit gateway: \(status)", exitReply: status)
                connection.fail(error.outcome, error.detail)
                promise?.fail(error)
                context.close(promise: nil)
            }
        case .holding:
            if held == nil { held = buffer } else { held!.writeBuffer(&buffer) }
        case .failed:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        // Nothing beyond the status is read until the relay is in place.
        if state == .awaiting || relayReady { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        exitClosedBeforeAnswering(context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // With half-closure allowed, the exit's close arrives as end of input.
        if let event = event as? ChannelEvent, event == .inputClosed, state == .awaiting {
            exitClosedBeforeAnswering(context: context)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func exitClosedBeforeAnswering(context: ChannelHandlerContext) {
        guard state == .awaiting else { return }
        state = .failed
        let error = UpstreamError(kind: .other, detail: "exit gateway closed the connection before answering (wrong secret?)")
        connection.fail("failed", error.detail)
        promise?.fail(error)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if state == .awaiting {
            // A failed TLS handshake (the encrypted pair) or a reset before the answer.
            state = .failed
            let detail = error is NIOSSLError || error is BoringSSLError || error is TLSHandshakeTimeout || error is PairPeerRefused
                ? "TLS to the exit gateway failed: \(error) (its certificate, the CA, --peer-identity?)"
                : "exit gateway connection failed before answering: \(error)"
            connection.fail("failed", detail)
            promise?.fail(UpstreamError(kind: .other, detail: detail))
        }
        context.fireErrorCaught(error)
    }

    /// Called once the relay is in place (on the channel's loop): returns the bytes held after
    /// the status and removes the reader. If the status has not come yet (0-RTT forwarding),
    /// the reader stays, checks it when it comes, and then steps aside.
    func releaseToRelay(_ channel: Channel) -> ByteBuffer? {
        guard state == .holding else {
            relayReady = true
            return nil
        }
        let held = self.held
        self.held = nil
        channel.pipeline.syncOperations.removeHandler(self, promise: nil)
        return held
    }

    private var relayReady = false
}
