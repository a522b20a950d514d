import NIOCore

/// ASAP Server Announce (RFC 5352 §2.2.10): a PR announces itself by UDP multicast with the
/// transports where PEs and PUs reach it.
public struct ASAPServerAnnounce: Hashable, Sendable {
    public var registrar: RegistrarIdentifier
    public var transports: [TransportAddress]
    public init(registrar: RegistrarIdentifier, transports: [TransportAddress]) {
        self.registrar = registrar
        self.transports = transports
    }
}

extension ASAPServerAnnounce {
    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(registrar.rawValue)
        for transport in transports { buffer.writeTransportParameter(transport) }
    }
}
