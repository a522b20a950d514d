import NIOCore

/// A time-ordered queue of events; events at the same time come out in insertion order, so a
/// run is deterministic.
struct EventQueue<Event> {
    private var heap: [(time: NIODeadline, order: UInt64, event: Event)] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, at time: NIODeadline) {
        counter += 1
        heap.append((time, counter, event))
        var index = heap.count - 1
        while index > 0 {
            let parent = (index - 1) / 2
            guard before(index, parent) else { break }
            heap.swapAt(index, parent)
            index = parent
        }
    }

    mutating func pop() -> (time: NIODeadline, event: Event)? {
        guard !heap.isEmpty else { return nil }
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var index = 0
            while true {
                let left = 2 * index + 1
                guard left < heap.count else { break }
                var smallest = left
                if left + 1 < heap.count, before(left + 1, left) { smallest = left + 1 }
                guard before(smallest, index) else { break }
                heap.swapAt(index, smallest)
                index = smallest
            }
        }
        return (first.time, first.event)
    }

    private func before(_ a: Int, _ b: Int) -> Bool {
        heap[a].time != heap[b].time ? heap[a].time < heap[b].time : heap[a].order < heap[b].order
    }
}
