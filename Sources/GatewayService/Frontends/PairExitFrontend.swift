import Foundation
import Gateway
import NIOCore

/// The exit gateway's side of a carried connection: verifies the entry's pair header, checks
/// the destination, connects, answers with a status byte, and relays. On the encrypted pair
/// it sits behind the TLS handler and reads nothing before the entry's certificate names an
/// identity the exit accepts.
final class PairExitFrontend: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var buffered = ByteBuffer()
    private var connecting = false
    private let connection: GatewayConnection
    private let gateway: GatewayContext

    init(connection: GatewayConnection, gateway: GatewayContext) {
        self.connection = connection
        self.gateway = gateway
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.inspectClient()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffered.writeBuffer(&incoming)
        guard !connecting, let secret = gateway.configuration.pairSecret else { return }
        let header: PairHeader?
        do {
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            header = try gateway.withReplayGuard { replayGuard in
                try PairHeader.read(from: &buffered, secret: secret, nowMilliseconds: now, replayGuard: &replayGuard)
            }
        } catch {
            // No status byte: an unauthenticated peer learns nothing about this gateway.
            refuse(context: context, reason: "\(error)")
            return
        }
        guard let header else {
            if buffered.readableBytes > PairHeader.maximumLength { refuse(context: context, reason: "pair header too long") }
            return
        }
        connecting = true
        let destination = header.destination
        gateway.openUpstream(to: destination, for: connection, awaitExitStatus: false).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(bytes: [SOCKSReplyCode.succeeded.rawValue])), promise: nil)
                RelayHandler.takeOver(from: context, upstream: upstream, connection: self.connection, clientEarlyData: self.buffered,
                                      idleSweep: self.gateway.idleSweep(on: context.eventLoop))
            case .failure(let error):
                let failure = UpstreamError.from(error, target: destination.description)
                self.connection.fail(failure.outcome, failure.detail)
                self.gateway.logger.info("exit connect failed", metadata: ["id": "\(self.connection.id)", "destination": "\(destination)", "error": "\(failure.detail)"])
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(bytes: [failure.socksReply.rawValue]))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if !connecting { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !connecting {
            connection.fail("failed", "entry closed before sending a complete pair header")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // On the encrypted pair mostly a failed TLS handshake (wrong CA, no certificate, a
        // plain-TCP entry, a scanner); otherwise a reset before the header was complete.
        if !connecting { refuse(context: context, reason: (gateway.configuration.pairTLS != nil ? "TLS: " : "") + "\(error)") }
        context.fireErrorCaught(error)
    }

    private func refuse(context: ChannelHandlerContext, reason: String) {
        guard !connecting else { return }
        connecting = true
        connection.fail("refused", reason)
        gateway.metrics.handshakeFailure("pair")
        gateway.logger.warning("pair header refused", metadata: ["id": "\(connection.id)", "peer": "\(context.remoteAddress?.endpointText ?? "?")",
                                                                "reason": "\(reason)"])
        context.close(promise: nil)
    }
}
