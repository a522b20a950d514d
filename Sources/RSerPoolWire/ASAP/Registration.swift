import NIOCore

/// ASAP Registration (RFC 5352 §2.2.1): a PE asks its home PR to add or update it in a pool.
public struct ASAPRegistration: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var poolElement: PoolElementParameter
    public init(poolHandle: PoolHandle, poolElement: PoolElementParameter) {
        self.poolHandle = poolHandle
        self.poolElement = poolElement
    }
}

/// ASAP Registration Response (RFC 5352 §2.2.3). `R` (reject) set when `error` says why.
public struct ASAPRegistrationResponse: Hashable, Sendable {
    public static let rejectFlag: UInt8 = 0x01
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    public var rejected: Bool
    public var error: OperationError?
    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier, rejected: Bool = false, error: OperationError? = nil) {
        self.poolHandle = poolHandle
        self.identifier = identifier
        self.rejected = rejected
        self.error = error
    }
}

/// ASAP Deregistration (RFC 5352 §2.2.2): a PE leaves its pool.
public struct ASAPDeregistration: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier) {
        self.poolHandle = poolHandle
        self.identifier = identifier
    }
}

/// ASAP Deregistration Response (RFC 5352 §2.2.4).
public struct ASAPDeregistrationResponse: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var identifier: PoolElementIdentifier
    public var error: OperationError?
    public init(poolHandle: PoolHandle, identifier: PoolElementIdentifier, error: OperationError? = nil) {
        self.poolHandle = poolHandle
        self.identifier = identifier
        self.error = error
    }
}

extension ASAPRegistration {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementParameter(poolElement)
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Registration"), limits: limits)
        poolElement = try PoolElementParameter.decode(reader.expect(.poolElement, in: "Registration"), limits: limits)
    }
}

extension ASAPRegistrationResponse {
    var flags: UInt8 { rejected ? Self.rejectFlag : 0 }
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementIdentifierParameter(identifier)
        if let error { buffer.writeOperationErrorParameter(error) }
    }
    init(flags: UInt8, reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Registration Response"), limits: limits)
        identifier = try PoolElementIdentifier.decode(reader.expect(.poolElementIdentifier, in: "Registration Response"))
        rejected = flags & Self.rejectFlag != 0
        error = try reader.next().map { raw throws(RSerPoolWireError) in
            guard raw.type == .operationError else {
                throw RSerPoolWireError(.invalidValue, "Registration Response carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            return try OperationError.decode(raw)
        }
    }
}

extension ASAPDeregistration {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementIdentifierParameter(identifier)
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Deregistration"), limits: limits)
        identifier = try PoolElementIdentifier.decode(reader.expect(.poolElementIdentifier, in: "Deregistration"))
    }
}

extension ASAPDeregistrationResponse {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        buffer.writePoolElementIdentifierParameter(identifier)
        if let error { buffer.writeOperationErrorParameter(error) }
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Deregistration Response"), limits: limits)
        identifier = try PoolElementIdentifier.decode(reader.expect(.poolElementIdentifier, in: "Deregistration Response"))
        error = try reader.next().map { raw throws(RSerPoolWireError) in
            guard raw.type == .operationError else {
                throw RSerPoolWireError(.invalidValue, "Deregistration Response carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            return try OperationError.decode(raw)
        }
    }
}
