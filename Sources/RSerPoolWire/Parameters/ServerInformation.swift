import NIOCore

/// The Server Information parameter (RFC 5354 §3.11): a registrar's identifier and where it listens.
public struct ServerInformation: Hashable, Sendable {
    public var identifier: RegistrarIdentifier
    public var transport: TransportAddress

    public init(identifier: RegistrarIdentifier, transport: TransportAddress) {
        self.identifier = identifier
        self.transport = transport
    }
}

extension ByteBuffer {
    public mutating func writeServerInformationParameter(_ info: ServerInformation) {
        writeTLV(type: ParameterType.serverInformation.rawValue) { buffer in
            buffer.writeInteger(info.identifier.rawValue)
            buffer.writeTransportParameter(info.transport)
        }
    }
}

extension ServerInformation {
    static func decode(_ raw: RawParameter, limits: WireLimits) throws(RSerPoolWireError) -> ServerInformation {
        var value = raw.value
        let identifier = RegistrarIdentifier(try value.readFixed(UInt32.self, in: "Server Information"))
        var reader = ParameterReader(value)
        guard let transportRaw = try reader.next(), TransportAddress.transportKinds.contains(transportRaw.type) else {
            throw RSerPoolWireError(.missingParameter, "Server Information lacks a transport", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        let transport = try TransportAddress.decode(transportRaw, limits: limits)
        return ServerInformation(identifier: identifier, transport: transport)
    }
}
