import NIOCore

/// ASAP Handle Resolution (RFC 5352 §2.2.5): a PU asks a PR for PEs of a pool.
public struct ASAPHandleResolution: Hashable, Sendable {
    public var poolHandle: PoolHandle
    /// How many PEs the PU wants (extension); nil lets the PR choose (3 by default).
    public var option: HandleResolutionOption?
    public init(poolHandle: PoolHandle, option: HandleResolutionOption? = nil) {
        self.poolHandle = poolHandle
        self.option = option
    }
}

/// ASAP Handle Resolution Response (RFC 5352 §2.2.6): the pool's policy and the selected PEs,
/// or an Operation Error (e.g. unknown pool handle).
public struct ASAPHandleResolutionResponse: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var policy: PoolPolicy?
    public var elements: [PoolElementParameter]
    public var error: OperationError?
    public init(poolHandle: PoolHandle, policy: PoolPolicy? = nil, elements: [PoolElementParameter] = [], error: OperationError? = nil) {
        self.poolHandle = poolHandle
        self.policy = policy
        self.elements = elements
        self.error = error
    }
}

/// ASAP Business Card (RFC 5352 §2.2.12): a PE or PU tells its peer which pool it belongs to
/// and which PEs to fail over to.
public struct ASAPBusinessCard: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var policy: PoolPolicy?
    public var elements: [PoolElementParameter]
    public init(poolHandle: PoolHandle, policy: PoolPolicy? = nil, elements: [PoolElementParameter] = []) {
        self.poolHandle = poolHandle
        self.policy = policy
        self.elements = elements
    }
}

extension ASAPHandleResolution {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        if let option { buffer.writeHandleResolutionOptionParameter(option) }
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Handle Resolution"), limits: limits)
        option = nil
        if let raw = try reader.next() {
            guard raw.type == .handleResolutionOption else {
                throw RSerPoolWireError(.invalidValue, "Handle Resolution carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            option = try HandleResolutionOption.decode(raw)
        }
    }
}

/// Reads `[policy] PE…` as in Handle Resolution Response and Business Card.
private func readPolicyAndElements(_ reader: inout ParameterReader, limits: WireLimits, context: String,
                                   allowError: Bool) throws(RSerPoolWireError) -> (PoolPolicy?, [PoolElementParameter], OperationError?) {
    var policy: PoolPolicy?
    var elements: [PoolElementParameter] = []
    var error: OperationError?
    while let raw = try reader.next() {
        switch raw.type {
        case .poolMemberSelectionPolicy where policy == nil && elements.isEmpty:
            policy = try PoolPolicy.decode(raw, limits: limits)
        case .poolElement:
            elements.append(try PoolElementParameter.decode(raw, limits: limits))
            guard elements.count <= limits.maximumPoolElementsPerMessage else {
                throw RSerPoolWireError(.tooManyItems, "\(context) carries more than \(limits.maximumPoolElementsPerMessage) PEs", bytes: raw.whole)
            }
        case .operationError where allowError && error == nil:
            error = try OperationError.decode(raw)
        default:
            throw RSerPoolWireError(.invalidValue, "\(context) carries an unexpected \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
    }
    return (policy, elements, error)
}

extension ASAPHandleResolutionResponse {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        if let policy { buffer.writePolicyParameter(policy) }
        for element in elements { buffer.writePoolElementParameter(element) }
        if let error { buffer.writeOperationErrorParameter(error) }
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Handle Resolution Response"), limits: limits)
        (policy, elements, error) = try readPolicyAndElements(&reader, limits: limits, context: "Handle Resolution Response", allowError: true)
    }
}

extension ASAPBusinessCard {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePoolHandleParameter(poolHandle)
        if let policy { buffer.writePolicyParameter(policy) }
        for element in elements { buffer.writePoolElementParameter(element) }
    }
    init(reader: inout ParameterReader, limits: WireLimits) throws(RSerPoolWireError) {
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Business Card"), limits: limits)
        (policy, elements, _) = try readPolicyAndElements(&reader, limits: limits, context: "Business Card", allowError: false)
    }
}
