import NIOCore

/// ASAP Endpoint Unreachable (RFC 5352 §2.2.9): a PU reports a PE it could not reach.
public struct ASAPEndpointUnreachable: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier) {
        self.poolHandle = poolHandle
        self.identifier = identifier
    }
}

extension ASAPEndpointUnreachable {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementIdentifierParameter(identifier)
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Endpoint Unreachable"), limits: limits)
        identifier = try PoolElementIdentifier.decode(reader.expect(.poolElementIdentifier, in: "Endpoint Unreachable"))
    }
}
