import NIOCore
import RSerPoolWire

/// A pool user's cache of handle resolutions (RFC 5351 §3.3: "PU-side cache"), with local
/// selection by the pool's policy over the cached PEs — the same `Pool` code the registrar
/// uses — and removal of PEs the user found unreachable.
public struct HandleResolutionCache: Sendable {
    /// How long a resolution is used before the PU asks a registrar again.
    public var staleTimeout: TimeAmount
    private var entries: [PoolHandle: (pool: Pool, fetchedAt: NIODeadline)] = [:]
    private var generator: SplitMix64

    public init(staleTimeout: TimeAmount = .seconds(1), seed: UInt64? = nil) {
        self.staleTimeout = staleTimeout
        self.generator = seed.map(SplitMix64.init(seed:)) ?? SplitMix64()
    }

    /// Whether a fresh resolution with at least one PE is cached.
    public func isFresh(_ handle: PoolHandle, now: NIODeadline) -> Bool {
        guard let cached = entries[handle] else { return false }
        return !cached.pool.isEmpty && now - cached.fetchedAt < staleTimeout
    }

    /// Stores a registrar's answer; returns the number of usable PEs.
    @discardableResult
    public mutating func store(_ response: ASAPHandleResolutionResponse, now: NIODeadline) -> Int {
        guard response.error == nil, let first = response.elements.first,
              var pool = Pool(handle: response.poolHandle, policyType: first.policy.type,
                              transportKind: first.userTransport.kind, transportUse: first.userTransport.transportUse)
        else {
            entries[response.poolHandle] = nil
            return 0
        }
        for element in response.elements where element.policy.type == pool.policyType {
            pool.upsert(PoolElementEntry(parameter: element, association: nil, now: now))
        }
        entries[response.poolHandle] = (pool, now)
        return pool.count
    }

    /// Selects up to `count` cached PEs by the pool's policy.
    public mutating func select(_ handle: PoolHandle, count: Int = 1) -> [PoolElementParameter] {
        guard entries[handle] != nil else { return [] }
        return entries[handle]!.pool.select(count: count, using: &generator).map(\.parameter)
    }

    /// Forgets a PE the user could not reach (it reports it to the registrar separately).
    public mutating func remove(_ handle: PoolHandle, _ identifier: PoolElementIdentifier) {
        entries[handle]?.pool.remove(identifier)
    }

    public mutating func invalidate(_ handle: PoolHandle) { entries[handle] = nil }

    public func cachedCount(_ handle: PoolHandle) -> Int { entries[handle]?.pool.count ?? 0 }
}
