import NIOCore

/// ASAP Endpoint Keep-Alive (RFC 5352 §2.2.7): a PR checks that a PE is alive. With the home
/// flag `H` the sender says "I am your home PR now" (used after a takeover).
public struct ASAPEndpointKeepAlive: Hashable, Sendable {
    public static let homeFlag: UInt8 = 0x01
    public var registrar: RegistrarIdentifier
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier?
    public var isHome: Bool
    public init(registrar: RegistrarIdentifier, poolHandle: PoolHandle, identifier: PoolElementIdentifier?, isHome: Bool = false) {
        self.registrar = registrar
        self.poolHandle = poolHandle
        self.identifier = identifier
        self.isHome = isHome
    }
}

/// ASAP Endpoint Keep-Alive Ack (RFC 5352 §2.2.8): the PE's answer.
public struct ASAPEndpointKeepAliveAck: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier) {
        self.poolHandle = poolHandle
        self.identifier = identifier
    }
}

extension ASAPEndpointKeepAlive {
    var flags: UInt8 { isHome ? Self.homeFlag : 0 }
    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(registrar.rawValue)
        buffer.writePoolHandleParameter(poolHandle)
        if let identifier { buffer.writePoolElementIdentifierParameter(identifier) }
    }
}

extension ASAPEndpointKeepAliveAck {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementIdentifierParameter(identifier)
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Endpoint Keep-Alive Ack"), limits: limits)
        identifier = try PoolElementIdentifier.decode(reader.expect(.poolElementIdentifier, in: "Endpoint Keep-Alive Ack"))
    }
}
