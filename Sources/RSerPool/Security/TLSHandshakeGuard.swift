import NIOCore
import NIOSSL
import NIOTLS
import X509

/// Sits right after the TLS handler of an association: closes the association if the
/// handshake has not completed within `timeout` (a client that stalls or sends garbage holds
/// nothing for long), and hands over the peer's identity once it has.
public final class TLSHandshakeGuard: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private let authenticated: (String?) -> Void
    private var timer: Scheduled<Void>?
    private var done = false

    /// `authenticated` gets the identity the peer's certificate names (nil: it sent none).
    public init(timeout: TimeAmount = TLSFiles.handshakeTimeout, authenticated: @escaping (String?) -> Void = { _ in }) {
        self.timeout = timeout
        self.authenticated = authenticated
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        startTimer(context)
        context.fireChannelActive()
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        guard timer == nil, !done else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.fireErrorCaught(TLSHandshakeTimeout())
            loopBound.value.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !done {
            done = true
            timer?.cancel()
            let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self).peerCertificate
            authenticated(certificate.flatMap(TLSPeerIdentity.name(of:)))
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }
}

/// The TLS handshake did not complete in time.
public struct TLSHandshakeTimeout: Error, CustomStringConvertible {
    public var description: String { "the TLS handshake did not complete within \(TLSFiles.handshakeTimeout)" }
}

/// The identity a certificate names: its first DNS subject alternative name, else its
/// subject's common name. What `PoolAuthorization` rules and the logs call a PE or PU.
public enum TLSPeerIdentity {
    /// Every DNS subject alternative name of the certificate, else its common name.
    public static func names(of certificate: NIOSSLCertificate) -> [String] {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return [] }
        let dns = ((try? parsed.extensions.subjectAlternativeNames) ?? nil)?.compactMap { name -> String? in
            if case .dnsName(let dns) = name { return dns }
            return nil
        } ?? []
        if !dns.isEmpty { return dns }
        for relative in parsed.subject {
            for attribute in relative where attribute.type == .RDNAttributeType.commonName {
                return ["\(attribute.value)"]
            }
        }
        return []
    }

    public static func name(of certificate: NIOSSLCertificate) -> String? { names(of: certificate).first }
}
