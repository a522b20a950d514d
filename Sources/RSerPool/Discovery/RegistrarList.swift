import NIOCore
import NIOSSL
import RSerPoolCore
import RSerPoolWire

/// Where a pool element or pool user finds registrars: a static list, Server Announces, or
/// both (RFC 5352 §3.6). Static ones are tried first, in order, then announced ones.
public struct RegistrarList: Sendable {
    /// Registrars to try, in order.
    public var addresses: [SocketAddress]
    public var transport: TransportProtocol
    /// Listen for Server Announces too (nil: static list only).
    public var announce: AnnounceListening?
    /// How long an announced registrar is used after its last announce (reference: 5 s).
    public var announceTimeout: TimeAmount = .seconds(5)
    /// ASAP over TLS (``TLSFiles/clientContext(verifyingAddress:)``); nil: plain TCP/MPTCP.
    public var tls: NIOSSLContext?
    /// A PE's takeover listener over TLS (``TLSFiles/serverContext()``: its certificate; the
    /// adopting registrar's must chain to the CA). With `tls` but without this (no
    /// certificate of its own), a PE does not listen for adoption at all — a plain listener
    /// beside TLS registrations would let anyone adopt it — and re-registers by itself.
    public var adoptionTLS: NIOSSLContext?
    /// The certificate identities of this scope's registrars that may adopt the PE over
    /// `adoptionTLS` (`--registrar-identity`); empty: any certificate the CA signed — a PE's of
    /// the same CA too, since an adopting registrar dials in and no address can be checked.
    public var adoptionIdentities: Set<String> = []

    public init(_ addresses: [SocketAddress], transport: TransportProtocol = .mptcp, announce: AnnounceListening? = nil) {
        self.addresses = addresses
        self.transport = transport
        self.announce = announce
    }

    func makeTable() -> RegistrarTable {
        RegistrarTable(static: addresses.compactMap { TransportAddress(tcp: $0) }, announceTimeout: announceTimeout)
    }
}

extension RegistrarTable {
    /// The socket addresses to try now.
    func socketAddresses(now: NIODeadline) -> [SocketAddress] {
        candidates(now: now).compactMap { try? $0.socketAddress() }
    }
}

/// Opens an association to a registrar, with `initializer` setting up its pipeline: the
/// drivers' only way to reach a socket, so that tests can hand them EmbeddedChannels.
typealias RegistrarConnector = @Sendable (_ address: SocketAddress, _ transport: TransportProtocol, _ loop: EventLoop,
                                          _ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel>

enum RegistrarConnections {
    /// TCP or MPTCP sockets.
    static let sockets: RegistrarConnector = { address, transport, loop, initializer in
        StreamTransport.connect(to: address, transport: transport, group: loop, initializer: initializer)
    }

    /// The sockets of `registrars`: TLS over them when it has a TLS context (the registrar's
    /// certificate verified against the CA and the address connected to).
    static func connector(for registrars: RegistrarList) -> RegistrarConnector {
        guard let tls = registrars.tls else { return sockets }
        return { address, transport, loop, initializer in
            StreamTransport.connect(to: address, transport: transport, group: loop) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard())
                }.flatMap { initializer(channel) }
            }
        }
    }
}
