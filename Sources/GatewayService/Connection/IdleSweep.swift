import NIOCore

/// The idle timeout of one event loop's relayed connections, checked for all of them by one
/// timer instead of two per connection.
///
/// NIO keeps scheduled tasks in a heap and cancels one by a linear search, so per-connection
/// idle timers (NIO's `IdleStateHandler` on both channels) make every close cost a scan over
/// the timers of all open connections. They also leaked: a handler added to an upstream
/// channel as its connect completes schedules once when added and again at `channelActive`,
/// which follows, and the first timer — holding the channel — stayed for the whole idle
/// timeout (300 s: at 3,000 connections/s, ~900,000 of them).
///
/// Here each relayed connection only notes the sweep's tick when it reads; a sweep every
/// `interval` closes the connections that have not read for more than the timeout. A
/// connection is never closed before the timeout and at most one interval after it. The
/// timer runs only while the loop has relayed connections. All of it runs on the loop.
final class IdleSweep {
    /// Sweeps per idle timeout (the precision), but no more often than `shortestInterval` and
    /// no less often than `longestInterval`.
    static let sweepsPerTimeout: Int64 = 10
    static let shortestInterval = TimeAmount.milliseconds(10)
    static let longestInterval = TimeAmount.seconds(1)

    let loop: EventLoop
    let timeout: TimeAmount
    let interval: TimeAmount
    /// Sweeps done so far on this loop: what a read records as the connection's last activity.
    private(set) var tick: UInt64 = 0
    /// Ticks without a read after which a connection is idle: the last read may have come just
    /// before the next tick, so one more than the timeout's intervals.
    private let idleTicks: UInt64
    private var relays: [UInt64: RelayHandler] = [:]
    private var scheduled = false

    init(loop: EventLoop, timeout: TimeAmount) {
        self.loop = loop
        self.timeout = timeout
        let interval = TimeAmount.nanoseconds(timeout.nanoseconds / Self.sweepsPerTimeout)
        self.interval = min(max(interval, Self.shortestInterval), Self.longestInterval)
        let intervals = (timeout.nanoseconds + self.interval.nanoseconds - 1) / self.interval.nanoseconds
        idleTicks = UInt64(max(intervals, 1)) + 1
    }

    /// Starts watching a relay (the client side's handler; `id`: its connection).
    func track(_ relay: RelayHandler, id: UInt64) {
        relays[id] = relay
        relay.lastActiveTick = tick
        guard !scheduled else { return }
        scheduled = true
        loop.assumeIsolated().scheduleTask(in: interval) { self.sweep() }
    }

    /// Stops watching a relay (closed); harmless when it is not watched.
    func untrack(id: UInt64) {
        relays.removeValue(forKey: id)
    }

    var tracked: Int { relays.count }

    private func sweep() {
        tick &+= 1
        let idle = relays.filter { tick &- $0.value.lastActiveTick >= idleTicks }
        for (id, relay) in idle {
            relays.removeValue(forKey: id)
            relay.closeIdle()
        }
        // No relays, no timer: the next one tracked schedules it again.
        if relays.isEmpty {
            scheduled = false
        } else {
            loop.assumeIsolated().scheduleTask(in: interval) { self.sweep() }
        }
    }
}
