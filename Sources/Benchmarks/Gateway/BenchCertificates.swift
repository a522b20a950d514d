import Crypto
import Foundation
import SwiftASN1
import X509

/// A throw-away PKI for the benchmarks' TLS (the encrypted gateway pair, the TLS registrar): a
/// CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate (P-256,
/// valid for a day), written as PEM files into a fresh directory. Made in process, so the
/// benchmarks need no openssl.
struct BenchCertificates {
    let directory: String

    func path(_ file: String) -> String { "\(directory)/\(file)" }

    /// `--tls-certificate NAME.pem --tls-key NAME.key --tls-ca ca.pem`.
    func flags(_ name: String) -> [String] {
        ["--tls-certificate", path("\(name).pem"), "--tls-key", path("\(name).key"), "--tls-ca", path("ca.pem")]
    }

    init() throws {
        directory = NSTemporaryDirectory() + "edgepool-bench-pki-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("EdgePool benchmark CA") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86_400, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey))
        try write(ca, caKey, as: "ca")
        for (name, alternativeNames) in [("server", [GeneralName.dnsName("server"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]),
                                         ("client", [GeneralName.dnsName("client")])] {
            let key = P256.Signing.PrivateKey()
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: now - 3600, notValidAfter: now + 86_400, issuer: caName,
                subject: try DistinguishedName { CommonName(name) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(alternativeNames)
                },
                issuerPrivateKey: .init(caKey))
            try write(certificate, key, as: name)
        }
    }

    private func write(_ certificate: Certificate, _ key: P256.Signing.PrivateKey, as name: String) throws {
        try certificate.serializeAsPEM().pemString.write(toFile: path("\(name).pem"), atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: path("\(name).key"), atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
