import NIOCore
import NIOSSL

/// TLS for ASAP associations (RFC 5355 §3: TLS over the stream transport): the certificate
/// chain and key this side presents, and the CA certificates it verifies the other side
/// against. PEM files. TLS 1.3 only.
///
/// A registrar with `trustRoots` requires every PE and PU to present a certificate signed by
/// them (mutual authentication); the identity in it is what `PoolAuthorization` rules name.
/// A PE or PU with `trustRoots` accepts only a registrar whose certificate they signed and
/// whose subject alternative names include the address it connects to.
public struct TLSFiles: Sendable, Hashable, Codable {
    /// PEM: this side's certificate, then any intermediates.
    public var certificateChain: String?
    /// PEM: its private key.
    public var privateKey: String?
    /// PEM: the CA certificates the other side's certificate must chain to.
    public var trustRoots: String?

    public init(certificateChain: String? = nil, privateKey: String? = nil, trustRoots: String? = nil) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustRoots = trustRoots
    }

    /// How long a TLS handshake may take before the association is closed.
    public static let handshakeTimeout: TimeAmount = .seconds(10)

    /// The listener's context: presents the certificate; with `trustRoots`, requires and
    /// verifies the client's.
    public func serverContext() throws -> NIOSSLContext {
        guard let certificateChain, let privateKey else {
            throw ConfigurationError("TLS needs a certificate and its key (--tls-certificate, --tls-key)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try Self.load("certificate", certificateChain) { try NIOSSLCertificate.fromPEMFile($0).map { .certificate($0) } },
            privateKey: .privateKey(try Self.load("key", privateKey) { try NIOSSLPrivateKey(file: $0, format: .pem) }))
        configuration.minimumTLSVersion = .tlsv13
        configuration.keyLogCallback = TLSKeyLog.callback
        if let trustRoots {
            configuration.trustRoots = .certificates(try Self.load("CA", trustRoots) { try NIOSSLCertificate.fromPEMFile($0) })
            configuration.certificateVerification = .noHostnameVerification   // clients are not named by address
        } else {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// A PE's or PU's context toward registrars: verifies the registrar against
    /// `trustRoots` (its address must be in the certificate, unless `verifyingAddress` is
    /// false: a registrar adopting a PE checks the PE's identity instead), presents this
    /// side's certificate when one is given.
    public func clientContext(verifyingAddress: Bool = true) throws -> NIOSSLContext {
        guard let trustRoots else { throw ConfigurationError("TLS toward registrars needs the CA that signed them (--tls-ca)") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.keyLogCallback = TLSKeyLog.callback
        configuration.trustRoots = .certificates(try Self.load("CA", trustRoots) { try NIOSSLCertificate.fromPEMFile($0) })
        configuration.certificateVerification = verifyingAddress ? .fullVerification : .noHostnameVerification
        if let certificateChain, let privateKey {
            configuration.certificateChain = try Self.load("certificate", certificateChain) { try NIOSSLCertificate.fromPEMFile($0).map { .certificate($0) } }
            configuration.privateKey = .privateKey(try Self.load("key", privateKey) { try NIOSSLPrivateKey(file: $0, format: .pem) })
        } else if certificateChain != nil || privateKey != nil {
            throw ConfigurationError("a TLS certificate needs its key and a key its certificate (--tls-certificate with --tls-key)")
        }
        return try NIOSSLContext(configuration: configuration)
    }

    private static func load<T>(_ what: String, _ path: String, _ body: (String) throws -> T) throws -> T {
        do {
            return try body(path)
        } catch {
            throw ConfigurationError("cannot read the TLS \(what) file '\(path)': \(error)")
        }
    }
}


/// ENRP over TLS between peer registrars: both directions authenticate with certificates of
/// the same CA, and only the named identities are registrars of the scope (a PE's
/// certificate from the same CA must not make it a registrar).
public struct PeerTLS: Sendable {
    /// For the ENRP listeners.
    public var server: NIOSSLContext
    /// For associations this registrar opens (the peer's address must be in its certificate).
    public var client: NIOSSLContext
    public var identities: Set<String>
    public var handshakeTimeout: TimeAmount

    public init(server: NIOSSLContext, client: NIOSSLContext, identities: Set<String>, handshakeTimeout: TimeAmount = TLSFiles.handshakeTimeout) {
        self.server = server
        self.client = client
        self.identities = identities
        self.handshakeTimeout = handshakeTimeout
    }
}
