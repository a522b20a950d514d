import RSerPoolWire

/// The PEs registered under one pool handle, with the selection index of the pool's policy.
///
/// Every PE of a pool has the same policy type (RFC 5356 §2: otherwise "inconsistent pooling
/// policy"). Selection cost is O(k log n) for k selected PEs in a pool of n.
public struct Pool: Sendable {
    public let handle: PoolHandle
    public let policyType: PolicyType
    /// The user transport type and use of the first PE; later PEs must match.
    public let transportKind: ParameterType
    public let transportUse: TransportUse
    private let strategy: SelectionStrategy

    private var entries: [PoolElementEntry?] = []
    private var slotOf: [PoolElementIdentifier: Int] = [:]
    private var freeSlots: [Int] = []
    private var ordered = IndexedMinHeap<SelectionKey>()
    private var weights = FenwickTree()
    private var members: [Int] = []
    private var memberIndex: [Int] = []
    private var sequence: UInt64 = 0
    private var virtualTime: UInt64 = 0

    /// A pool for the given policy type, or nil if this package cannot select by it.
    public init?(handle: PoolHandle, policyType: PolicyType, transportKind: ParameterType, transportUse: TransportUse) {
        guard let strategy = SelectionStrategy(policyType) else { return nil }
        self.handle = handle
        self.policyType = policyType
        self.transportKind = transportKind
        self.transportUse = transportUse
        self.strategy = strategy
    }

    public var count: Int { slotOf.count }
    public var isEmpty: Bool { slotOf.isEmpty }

    public func entry(_ identifier: PoolElementIdentifier) -> PoolElementEntry? {
        slotOf[identifier].flatMap { entries[$0] }
    }

    /// All PEs, in no particular order.
    public var elements: some Sequence<PoolElementEntry> { entries.lazy.compactMap { $0 } }

    /// Adds a PE, or replaces the one with the same identifier (keeping its position in the
    /// round-robin order and its statistics).
    public mutating func upsert(_ entry: PoolElementEntry) {
        precondition(entry.parameter.policy.type == policyType)
        if let slot = slotOf[entry.identifier], let old = entries[slot] {
            var updated = entry
            updated.selectionCount = old.selectionCount
            updated.registeredAt = old.registeredAt
            let loadChanged = old.parameter.policy.values != entry.parameter.policy.values
            updated.selectionsSinceUpdate = loadChanged ? 0 : old.selectionsSinceUpdate
            entries[slot] = updated
            reindex(slot, isNew: false)
        } else {
            let slot: Int
            if let free = freeSlots.popLast() { slot = free; entries[slot] = entry } else { slot = entries.count; entries.append(entry) }
            slotOf[entry.identifier] = slot
            reindex(slot, isNew: true)
        }
    }

    /// Mutates an entry's bookkeeping (not its policy values) in place.
    public mutating func modify(_ identifier: PoolElementIdentifier, _ body: (inout PoolElementEntry) -> Void) {
        guard let slot = slotOf[identifier], entries[slot] != nil else { return }
        body(&entries[slot]!)
    }

    @discardableResult
    public mutating func remove(_ identifier: PoolElementIdentifier) -> PoolElementEntry? {
        guard let slot = slotOf.removeValue(forKey: identifier), let entry = entries[slot] else { return nil }
        entries[slot] = nil
        freeSlots.append(slot)
        switch strategy {
        case .ordered: ordered.remove(slot)
        case .weightedRandom: weights.setWeight(slot, 0)
        case .uniformRandom: break
        }
        removeMember(slot)
        return entry
    }

    /// Selects up to `count` distinct PEs by the pool's policy and updates the policy state
    /// (round-robin position, degradation) as a selection does (RFC 5356 §3).
    public mutating func select<G: RandomNumberGenerator>(count: Int, using generator: inout G) -> [PoolElementEntry] {
        let wanted = min(count, self.count)
        guard wanted > 0 else { return [] }
        var chosen: [Int] = []
        chosen.reserveCapacity(wanted)
        switch strategy {
        case .ordered:
            var popped: [(Int, SelectionKey)] = []
            while chosen.count < wanted, let (slot, key) = ordered.popMinimum() {
                chosen.append(slot)
                popped.append((slot, key))
            }
            for (slot, key) in popped {
                entries[slot]!.selectionCount += 1
                entries[slot]!.selectionsSinceUpdate += 1
                ordered.insert(slot, key: keyAfterSelection(slot, previous: key))
            }
        case .uniformRandom:
            if wanted * 2 >= members.count {
                var all = members
                all.shuffle(using: &generator)
                chosen = Array(all.prefix(wanted))
            } else {
                var seen = Set<Int>()
                while chosen.count < wanted {
                    let slot = members[Int.random(in: 0..<members.count, using: &generator)]
                    if seen.insert(slot).inserted { chosen.append(slot) }
                }
            }
            for slot in chosen { entries[slot]!.selectionCount += 1 }
        case .weightedRandom:
            var saved: [(Int, UInt64)] = []
            while chosen.count < wanted {
                let slot: Int
                if weights.total > 0 {
                    slot = weights.find(UInt64.random(in: 0..<weights.total, using: &generator))
                } else {
                    let remaining = members.filter { s in !chosen.contains(s) }
                    guard let pick = remaining.randomElement(using: &generator) else { break }
                    slot = pick
                }
                chosen.append(slot)
                saved.append((slot, weights.weight(slot)))
                weights.setWeight(slot, 0)
            }
            for (slot, _) in saved {
                entries[slot]!.selectionCount += 1
                entries[slot]!.selectionsSinceUpdate += 1
                weights.setWeight(slot, randomWeight(slot))
            }
        }
        return chosen.map { entries[$0]! }
    }

    // MARK: - Index maintenance

    private mutating func reindex(_ slot: Int, isNew: Bool) {
        if isNew { addMember(slot) }
        switch strategy {
        case .ordered:
            let entry = entries[slot]!
            let policy = entry.parameter.policy
            if isNew { sequence += 1 }
            let sequenceNumber = isNew ? sequence : (ordered.key(of: slot)?.sequence ?? sequence)
            var value: UInt64
            switch policyType {
            case .roundRobin: value = 0
            case .weightedRoundRobin: value = isNew ? virtualTime : (ordered.key(of: slot)?.value ?? virtualTime)
            case .priority: value = UInt64(UInt32.max - policy.weight)
            default: value = policy.effectiveLoad(selectionsSinceUpdate: entry.selectionsSinceUpdate)
            }
            ordered.update(slot, key: SelectionKey(value: value, sequence: sequenceNumber))
        case .weightedRandom:
            weights.setWeight(slot, randomWeight(slot))
        case .uniformRandom:
            break
        }
    }

    private mutating func keyAfterSelection(_ slot: Int, previous: SelectionKey) -> SelectionKey {
        sequence += 1
        let entry = entries[slot]!
        switch policyType {
        case .roundRobin, .priority, .leastUsed, .priorityLeastUsed:
            return SelectionKey(value: previous.value, sequence: sequence)
        case .weightedRoundRobin:
            virtualTime = max(virtualTime, previous.value)
            return SelectionKey(value: previous.value + entry.parameter.policy.weightedRoundRobinStride, sequence: sequence)
        default:
            return SelectionKey(value: entry.parameter.policy.effectiveLoad(selectionsSinceUpdate: entry.selectionsSinceUpdate), sequence: sequence)
        }
    }

    private func randomWeight(_ slot: Int) -> UInt64 {
        let entry = entries[slot]!
        return entry.parameter.policy.randomWeight(selectionsSinceUpdate: entry.selectionsSinceUpdate)
    }

    private mutating func addMember(_ slot: Int) {
        if slot >= memberIndex.count { memberIndex.append(contentsOf: repeatElement(-1, count: slot - memberIndex.count + 1)) }
        memberIndex[slot] = members.count
        members.append(slot)
    }

    private mutating func removeMember(_ slot: Int) {
        let index = memberIndex[slot]
        let last = members.removeLast()
        if index < members.count {
            members[index] = last
            memberIndex[last] = index
        }
        memberIndex[slot] = -1
    }
}
