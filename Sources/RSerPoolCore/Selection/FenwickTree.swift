/// A Fenwick (binary indexed) tree of non-negative weights per slot: O(log n) update and
/// O(log n) sampling of a slot with probability weight / total. The weighted-random pool
/// policies (WRAND, RLU and variants) select from it.
struct FenwickTree: Sendable {
    private var tree: [UInt64] = [0]
    private(set) var weights: [UInt64] = []
    private(set) var total: UInt64 = 0

    var capacity: Int { weights.count }

    mutating func setWeight(_ slot: Int, _ weight: UInt64) {
        if slot >= weights.count { grow(to: slot + 1) }
        let old = weights[slot]
        guard old != weight else { return }
        weights[slot] = weight
        total = total &- old &+ weight
        var index = slot + 1
        while index < tree.count {
            tree[index] = tree[index] &- old &+ weight
            index += index & -index
        }
    }

    func weight(_ slot: Int) -> UInt64 { slot < weights.count ? weights[slot] : 0 }

    /// The slot whose cumulative weight range contains `point` (0 ≤ point < total).
    func find(_ point: UInt64) -> Int {
        var position = 0
        var remaining = point
        var step = 1
        while step * 2 < tree.count { step *= 2 }
        while step > 0 {
            let next = position + step
            if next < tree.count, tree[next] <= remaining {
                position = next
                remaining -= tree[next]
            }
            step /= 2
        }
        return position
    }

    private mutating func grow(to minimum: Int) {
        var newCapacity = max(8, weights.count)
        while newCapacity < minimum { newCapacity *= 2 }
        weights.append(contentsOf: repeatElement(0, count: newCapacity - weights.count))
        // Rebuild in O(n).
        tree = [0] + weights
        for index in 1..<tree.count {
            let parent = index + (index & -index)
            if parent < tree.count { tree[parent] &+= tree[index] }
        }
    }
}
