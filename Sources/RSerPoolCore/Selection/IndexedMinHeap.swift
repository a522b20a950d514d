/// A binary min-heap over small integer slots with a position index, so that any slot's key
/// can be changed or removed in O(log n). The ordered pool policies (RR, WRR, priority and the
/// Least-Used family) select from it without sorting per request.
struct IndexedMinHeap<Key: Comparable & Sendable>: Sendable {
    private var heap: [Int] = []
    private var keys: [Key?] = []
    private var position: [Int] = []

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    func contains(_ slot: Int) -> Bool { slot < position.count && position[slot] >= 0 }
    func key(of slot: Int) -> Key? { slot < keys.count ? keys[slot] : nil }
    var minimum: Int? { heap.first }

    mutating func insert(_ slot: Int, key: Key) {
        precondition(!contains(slot), "slot \(slot) already in the heap")
        if slot >= position.count {
            position.append(contentsOf: repeatElement(-1, count: slot - position.count + 1))
            keys.append(contentsOf: repeatElement(nil, count: slot - keys.count + 1))
        }
        keys[slot] = key
        heap.append(slot)
        position[slot] = heap.count - 1
        siftUp(heap.count - 1)
    }

    mutating func remove(_ slot: Int) {
        guard contains(slot) else { return }
        let index = position[slot]
        let last = heap.count - 1
        if index != last {
            swapAt(index, last)
        }
        heap.removeLast()
        position[slot] = -1
        keys[slot] = nil
        if index < heap.count {
            siftDown(index)
            siftUp(index)
        }
    }

    mutating func update(_ slot: Int, key: Key) {
        guard contains(slot) else { insert(slot, key: key); return }
        let old = keys[slot]!
        keys[slot] = key
        if key < old { siftUp(position[slot]) } else { siftDown(position[slot]) }
    }

    /// Removes and returns the slot with the smallest key.
    mutating func popMinimum() -> (slot: Int, key: Key)? {
        guard let slot = heap.first, let key = keys[slot] else { return nil }
        remove(slot)
        return (slot, key)
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        position[heap[a]] = a
        position[heap[b]] = b
    }

    private func less(_ a: Int, _ b: Int) -> Bool { keys[heap[a]]! < keys[heap[b]]! }

    private mutating func siftUp(_ start: Int) {
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard less(index, parent) else { return }
            swapAt(index, parent)
            index = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var index = start
        while true {
            let left = 2 * index + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count, less(left + 1, left) { smallest = left + 1 }
            guard less(smallest, index) else { return }
            swapAt(index, smallest)
            index = smallest
        }
    }
}
