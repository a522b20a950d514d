import NIOCore

/// The Pool Element parameter (RFC 5354 §3.10): one PE as a registrar knows it.
///
/// ```
/// type 0x000A | length
/// PE identifier u32
/// home ENRP server identifier u32
/// registration life s32 (milliseconds)
/// user transport parameter
/// member selection policy parameter
/// [ASAP transport parameter]   (ENRP only: where the home PR reaches the PE)
/// ```
public struct PoolElementParameter: Hashable, Sendable {
    public var identifier: PoolElementIdentifier
    /// The PR that monitors this PE; `.unknown` (0) in a PE's first registration.
    public var homeRegistrar: RegistrarIdentifier
    /// How long the registration stays valid without re-registration, in milliseconds.
    public var registrationLife: Int32
    /// Where pool users reach the PE.
    public var userTransport: TransportAddress
    public var policy: PoolPolicy
    /// Where the home PR's ASAP association with the PE is (carried between PRs by ENRP).
    public var asapTransport: TransportAddress?

    public init(identifier: PoolElementIdentifier, homeRegistrar: RegistrarIdentifier = .unknown,
                registrationLife: Int32, userTransport: TransportAddress, policy: PoolPolicy,
                asapTransport: TransportAddress? = nil) {
        self.identifier = identifier
        self.homeRegistrar = homeRegistrar
        self.registrationLife = registrationLife
        self.userTransport = userTransport
        self.policy = policy
        self.asapTransport = asapTransport
    }
}

extension ByteBuffer {
    public mutating func writePoolElementParameter(_ element: PoolElementParameter) {
        writeTLV(type: ParameterType.poolElement.rawValue) { buffer in
            buffer.writeInteger(element.identifier.rawValue)
            buffer.writeInteger(element.homeRegistrar.rawValue)
            buffer.writeInteger(element.registrationLife)
            buffer.writeTransportParameter(element.userTransport)
            buffer.writePolicyParameter(element.policy)
            if let asap = element.asapTransport { buffer.writeTransportParameter(asap) }
        }
    }
}

extension PoolElementParameter {
    static func decode(_ raw: RawParameter, limits: WireLimits) throws(RSerPoolWireError) -> PoolElementParameter {
        var value = raw.value
        let identifier = PoolElementIdentifier(try value.readFixed(UInt32.self, in: "Pool Element"))
        let home = RegistrarIdentifier(try value.readFixed(UInt32.self, in: "Pool Element"))
        let life = try value.readFixed(Int32.self, in: "Pool Element")
        var reader = ParameterReader(value)
        let transportKinds = Array(TransportAddress.transportKinds)
        let user = try reader.next()
        guard let user, transportKinds.contains(user.type) else {
            throw RSerPoolWireError(user == nil ? .missingParameter : .invalidValue,
                                    "Pool Element \(identifier) lacks a user transport", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        let userTransport = try TransportAddress.decode(user, limits: limits)
        let policyRaw = try reader.expect(.poolMemberSelectionPolicy, in: "Pool Element \(identifier)")
        let policy = try PoolPolicy.decode(policyRaw, limits: limits)
        var asap: TransportAddress?
        if let next = try reader.next() {
            guard transportKinds.contains(next.type) else {
                throw RSerPoolWireError(.invalidValue, "Pool Element \(identifier) has \(next.type) after its policy",
                                        parameterType: next.type.rawValue, bytes: raw.whole)
            }
            asap = try TransportAddress.decode(next, limits: limits)
        }
        if let extra = try reader.next() {
            throw RSerPoolWireError(.trailingBytes, "Pool Element \(identifier) has an extra \(extra.type)",
                                    parameterType: extra.type.rawValue, bytes: raw.whole)
        }
        return PoolElementParameter(identifier: identifier, homeRegistrar: home, registrationLife: life,
                                    userTransport: userTransport, policy: policy, asapTransport: asap)
    }
}
