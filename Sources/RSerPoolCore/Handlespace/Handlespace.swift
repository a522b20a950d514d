import NIOCore
import RSerPoolWire

/// All pools of an operation scope as one registrar knows them (RFC 5351 §2.3), with the
/// per-owner checksums ENRP compares (RFC 5353 §2.1.5). Pure data: no sockets, no clock.
public struct Handlespace: Sendable {
    public private(set) var pools: [PoolHandle: Pool] = [:]
    public private(set) var elementCount = 0
    private var checksums: [RegistrarIdentifier: HandlespaceChecksum] = [:]

    public init() {}

    /// What became of a registration.
    public enum RegistrationOutcome: Sendable, Equatable {
        case added
        case updated
        case rejected(ErrorCauseCode, String)
    }

    public func pool(_ handle: PoolHandle) -> Pool? { pools[handle] }
    public func entry(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) -> PoolElementEntry? {
        pools[handle]?.entry(identifier)
    }

    /// Checks a registration against the pool's rules without changing anything.
    public func validate(_ handle: PoolHandle, _ element: PoolElementParameter) -> RegistrationOutcome? {
        guard SelectionStrategy(element.policy.type) != nil else {
            return .rejected(.invalidValues, "policy \(element.policy.type) is not supported")
        }
        if let needed = element.policy.type.valueCount, element.policy.values.count != needed {
            return .rejected(.invalidValues, "policy \(element.policy.type) needs \(needed) values")
        }
        guard element.userTransport.kind == .tcpTransport || element.userTransport.kind == .sctpTransport
                || element.userTransport.kind == .udpTransport || element.userTransport.kind == .udpLiteTransport
                || element.userTransport.kind == .dccpTransport else {
            return .rejected(.inconsistentTransportType, "unusable user transport \(element.userTransport.kind)")
        }
        guard element.userTransport.port != 0 else {
            return .rejected(.invalidValues, "user transport port 0")
        }
        guard element.registrationLife > 0 else {
            return .rejected(.invalidValues, "registration life \(element.registrationLife) ms")
        }
        if let pool = pools[handle] {
            if pool.policyType != element.policy.type {
                return .rejected(.inconsistentPoolingPolicy, "pool \(handle) uses \(pool.policyType), PE asked for \(element.policy.type)")
            }
            if pool.transportKind != element.userTransport.kind {
                return .rejected(.inconsistentTransportType, "pool \(handle) uses \(pool.transportKind)")
            }
            if pool.transportUse != element.userTransport.transportUse {
                return .rejected(.inconsistentDataControlConfiguration, "pool \(handle) uses transport use \(pool.transportUse.rawValue)")
            }
        }
        return nil
    }

    /// Adds or updates a PE (after `validate`).
    @discardableResult
    public mutating func register(_ handle: PoolHandle, _ entry: PoolElementEntry) -> RegistrationOutcome {
        if let rejection = validate(handle, entry.parameter) { return rejection }
        var pool = pools.removeValue(forKey: handle)
            ?? Pool(handle: handle, policyType: entry.parameter.policy.type,
                    transportKind: entry.parameter.userTransport.kind, transportUse: entry.parameter.userTransport.transportUse)!
        let old = pool.entry(entry.identifier)
        pool.upsert(entry)
        pools[handle] = pool
        if let old {
            if old.owner != entry.owner {
                checksums[old.owner, default: .init()].remove(handle: handle, identifier: entry.identifier)
                checksums[entry.owner, default: .init()].add(handle: handle, identifier: entry.identifier)
            }
            return .updated
        }
        elementCount += 1
        checksums[entry.owner, default: .init()].add(handle: handle, identifier: entry.identifier)
        return .added
    }

    @discardableResult
    public mutating func remove(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) -> PoolElementEntry? {
        guard var pool = pools.removeValue(forKey: handle) else { return nil }
        let removed = pool.remove(identifier)
        if !pool.isEmpty { pools[handle] = pool }
        if let removed {
            elementCount -= 1
            checksums[removed.owner, default: .init()].remove(handle: handle, identifier: identifier)
        }
        return removed
    }

    public mutating func modify(_ handle: PoolHandle, _ identifier: PoolElementIdentifier, _ body: (inout PoolElementEntry) -> Void) {
        guard pools[handle] != nil else { return }
        pools[handle]!.modify(identifier, body)
    }

    /// Selects up to `count` PEs of a pool by its policy; nil for an unknown pool.
    public mutating func select<G: RandomNumberGenerator>(_ handle: PoolHandle, count: Int, using generator: inout G) -> [PoolElementEntry]? {
        guard pools[handle] != nil else { return nil }
        return pools[handle]!.select(count: count, using: &generator)
    }

    /// The ownership checksum of one registrar's PEs (RFC 5353 §2.1.5).
    public func checksum(of owner: RegistrarIdentifier) -> UInt16 { (checksums[owner] ?? .init()).value }
}
