import RSerPoolCore
import RSerPoolWire

extension RegistrarList {
    /// The registrars a PE or PU settings name: static addresses (127.0.0.1:3863 when none
    /// and no announces), and optionally Server Announces heard on a multicast group.
    public static func fromSettings(_ registrars: [Endpoint]?, transport: TransportProtocol, announce: Endpoint?,
                                    announceInterface: String?) throws -> RegistrarList {
        let defaults = announce == nil ? [Endpoint(host: "127.0.0.1", port: 3863)] : []
        let given = registrars ?? []
        var list = RegistrarList(try (given.isEmpty ? defaults : given).map { try $0.socketAddress() }, transport: transport)
        if let announce {
            var listening = AnnounceListening(group: try announce.socketAddress())
            if let announceInterface { listening.interface = try SettingText.address(announceInterface, "announceInterface") }
            list.announce = listening
        }
        return list
    }

    /// The list with ASAP over TLS when a CA is given (the registrars' certificates verified
    /// against it; this side's certificate presented when given).
    public func withTLS(ca: String?, certificate: String?, key: String?) throws -> RegistrarList {
        guard ca != nil || certificate != nil || key != nil else { return self }
        guard ca != nil else {
            throw ConfigurationError(setting: "tlsCa", "is needed with a TLS certificate: the CA that signed the registrars' certificates")
        }
        var list = self
        let files = TLSFiles(certificateChain: certificate, privateKey: key, trustRoots: ca)
        list.tls = try files.clientContext()
        if certificate != nil, key != nil { list.adoptionTLS = try files.serverContext() }
        return list
    }

    /// The same list whose TLS adoption listener admits only these registrar identities
    /// (empty: any certificate of the CA).
    public func adoptedOnlyBy(_ identities: Set<String>) -> RegistrarList {
        var list = self
        list.adoptionIdentities = identities
        return list
    }
}

extension PoolPolicy {
    /// A policy from its short name (`rr`, `plu`, …) and the values settings give; loads,
    /// increments and degradations are fractions 0…1.
    /// - Throws: ``ConfigurationError`` for an unknown name or a fraction out of range.
    public static func fromSettings(name: String, load: Double = 0, increment: Double = 0, degradation: Double = 0,
                                    weight: UInt32 = 1, priority: UInt32 = 1) throws -> PoolPolicy {
        guard let type = PolicyType(name: name) else {
            throw ConfigurationError(setting: "policy", "'\(name)' is not a policy; known: \(PolicyType.implemented.map(\.1).joined(separator: ", "))")
        }
        for (key, value) in [("load", load), ("increment", increment), ("degradation", degradation)] {
            try ConfigurationError.check(value, in: 0...1, key)
        }
        let l = PoolPolicy.load(fraction: load), i = PoolPolicy.load(fraction: increment), d = PoolPolicy.load(fraction: degradation)
        switch type {
        case .roundRobin, .random: return PoolPolicy(type: type)
        case .weightedRoundRobin, .weightedRandom: return PoolPolicy(type: type, values: [weight])
        case .priority: return PoolPolicy(type: type, values: [priority])
        case .leastUsed, .randomizedLeastUsed: return PoolPolicy(type: type, values: [l])
        case .leastUsedWithDegradation, .randomizedLeastUsedWithDegradation: return PoolPolicy(type: type, values: [l, d])
        case .priorityLeastUsed, .randomizedPriorityLeastUsed: return PoolPolicy(type: type, values: [l, i])
        default: return PoolPolicy(type: type, values: [l, i, d])
        }
    }
}
