import NIOCore
import NIOSSL
import RSerPool

/// TLS 1.3 between an entry and an exit gateway: every carried connection is encrypted and
/// both ends authenticate with certificates of one CA (mutual authentication, no 0-RTT early
/// data, so nothing a recorded handshake carries can be replayed). The pair header still goes
/// first, inside the TLS stream, with its shared-secret tag, time and nonce.
///
/// - An entry verifies the exit's certificate against the CA and checks that it names the
///   exit: the identity in ``peerIdentities`` (one DNS name), else the exit's address.
/// - An exit requires an entry certificate of the CA; with ``peerIdentities`` only those
///   identities (the certificate's first DNS name, else its common name) may carry connections.
public struct PairTLS: Sendable {
    /// Which end of the pair this context is for.
    public enum Role: Sendable { case entry, exit }

    public var role: Role
    /// The entry's client context or the exit's server context.
    public var context: NIOSSLContext
    /// Entry: the exit's identity (at most one); exit: the entries it accepts (empty: any the
    /// CA signed).
    public var peerIdentities: Set<String>
    public var handshakeTimeout: TimeAmount

    /// Loads the PEM files; each end needs its certificate, its key and the CA.
    /// - Throws: `ConfigurationError` (RSerPool) naming what is missing or unreadable.
    public init(role: Role, files: TLSFiles, peerIdentities: Set<String> = [], handshakeTimeout: TimeAmount = TLSFiles.handshakeTimeout) throws {
        guard files.certificateChain != nil, files.privateKey != nil, files.trustRoots != nil else {
            throw ConfigurationError("the encrypted pair needs --tls-certificate, --tls-key and --tls-ca on both gateways (mutual authentication)")
        }
        if role == .entry, peerIdentities.count > 1 {
            throw ConfigurationError("an entry names one exit: give --peer-identity once")
        }
        self.role = role
        self.context = role == .entry ? try files.clientContext() : try files.serverContext()
        self.peerIdentities = peerIdentities
        self.handshakeTimeout = handshakeTimeout
    }

    /// The name the entry checks the exit's certificate for (nil: its address).
    var exitName: String? { role == .entry ? peerIdentities.first : nil }

    /// Adds the entry's TLS handlers toward the exit to a channel that is not yet connected.
    func addEntryHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(try clientHandler())
        try pipeline.addHandler(TLSFullClose())
    }

    /// Adds the exit's TLS handlers to an entry's accepted connection.
    func addExitHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(serverHandler())
        try pipeline.addHandler(TLSFullClose())
    }

    /// The entry's TLS handler toward the exit. With an exit name, the certificate must carry
    /// that name (NIOSSL alone would also accept one that carries the exit's address).
    private func clientHandler() throws -> NIOSSLClientHandler {
        guard let exitName else { return try NIOSSLClientHandler(context: context, serverHostname: nil) }
        // The additional check runs after BoringSSL verified the chain and before the handshake
        // completes, so nothing (not even the pair header) reaches an exit of another name.
        // (An underscored NIOSSL API: the one hook at that point.)
        return try NIOSSLClientHandler._makeSSLClientHandler(context: context, serverHostname: exitName) { certificate, channel in
            let names = TLSPeerIdentity.names(of: certificate)
            guard names.contains(exitName) else {
                return channel.eventLoop.makeFailedFuture(PairPeerRefused("the exit's certificate names \(names.isEmpty ? "nothing" : names.joined(separator: ", ")), not --peer-identity \(exitName)"))
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// The exit's TLS handler for an entry's connection: with ``peerIdentities``, an entry
    /// whose certificate (verified against the CA) names another identity fails the handshake.
    private func serverHandler() -> NIOSSLServerHandler {
        guard !peerIdentities.isEmpty else { return NIOSSLServerHandler(context: context) }
        let admitted = peerIdentities
        return NIOSSLServerHandler._makeSSLServerHandler(context: context) { certificate, channel in
            let identity = TLSPeerIdentity.name(of: certificate)
            guard let identity, admitted.contains(identity) else {
                return channel.eventLoop.makeFailedFuture(PairPeerRefused("entry identity \(identity ?? "(none)") is not one of --peer-identity \(admitted.sorted().joined(separator: ", "))"))
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }
}

/// The other gateway's certificate verified against the CA but names another identity.
public struct PairPeerRefused: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
