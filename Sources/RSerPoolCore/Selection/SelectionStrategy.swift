import RSerPoolWire

/// How a pool policy selects, derived from its type. The ordered policies keep a key per PE in
/// an indexed heap (selection = pop the k smallest, update their keys, push them back:
/// O(k log n)); the weighted-random ones keep a weight per PE in a Fenwick tree (O(k log n));
/// Random picks uniformly from a dense array (O(k)).
enum SelectionStrategy: Sendable {
    case ordered
    case uniformRandom
    case weightedRandom

    init?(_ type: PolicyType) {
        switch type {
        case .roundRobin, .weightedRoundRobin, .priority, .leastUsed, .leastUsedWithDegradation,
             .priorityLeastUsed, .priorityLeastUsedWithDegradation:
            self = .ordered
        case .random:
            self = .uniformRandom
        case .weightedRandom, .randomizedLeastUsed, .randomizedPriorityLeastUsed,
             .randomizedLeastUsedWithDegradation, .randomizedPriorityLeastUsedWithDegradation:
            self = .weightedRandom
        default:
            return nil
        }
    }
}

/// The ordering key of the ordered policies: the policy value first, then a sequence number
/// that moves a selected PE behind the others of equal value (round robin among equals).
struct SelectionKey: Comparable, Sendable {
    var value: UInt64
    var sequence: UInt64
    static func < (a: Self, b: Self) -> Bool { a.value != b.value ? a.value < b.value : a.sequence < b.sequence }
}

extension PoolPolicy {
    /// The load as the policy sees it: the reported load, plus the increment the PE declares
    /// for a new request (PLU), plus the degradation per selection since its last update (LUD).
    func effectiveLoad(selectionsSinceUpdate steps: UInt64) -> UInt64 {
        var value = UInt64(load)
        switch type {
        case .priorityLeastUsed, .randomizedPriorityLeastUsed, .priorityLeastUsedWithDegradation,
             .randomizedPriorityLeastUsedWithDegradation:
            value += UInt64(loadIncrement)
        default: break
        }
        value += UInt64(loadDegradation) * steps
        return value
    }

    /// The weight of a PE in the weighted-random policies.
    func randomWeight(selectionsSinceUpdate steps: UInt64) -> UInt64 {
        switch type {
        case .weightedRandom:
            return UInt64(weight)
        default:
            // Randomized Least Used: probability grows with the free capacity (1 − load);
            // a full PE keeps a minimal weight so that it is never impossible.
            let load = min(effectiveLoad(selectionsSinceUpdate: steps), UInt64(UInt32.max))
            return UInt64(UInt32.max) - load + 1
        }
    }

    /// The WRR stride: the virtual time a selection costs, inversely proportional to the weight.
    var weightedRoundRobinStride: UInt64 { UInt64(1) << 40 / UInt64(max(weight, 1)) }
}
