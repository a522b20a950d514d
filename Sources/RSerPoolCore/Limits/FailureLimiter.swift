import NIOCore

/// Counts failures per key (a client address, a user) and blocks a key that fails too often:
/// `maximumFailures` within `window` block it for `blockDuration`. Bounded: at most
/// `maximumKeys` keys are tracked; past that the one idle longest is forgotten. Pure: the
/// caller passes the time.
///
/// The gateway uses it against password guessers (RFC 1929 and HTTP Basic failures per
/// source address).
public struct FailureLimiter<Key: Hashable & Sendable>: Sendable {
    public struct Settings: Sendable, Hashable {
        public var maximumFailures: Int
        public var window: TimeAmount
        public var blockDuration: TimeAmount
        public var maximumKeys: Int

        public init(maximumFailures: Int, window: TimeAmount, blockDuration: TimeAmount, maximumKeys: Int) {
            self.maximumFailures = maximumFailures
            self.window = window
            self.blockDuration = blockDuration
            self.maximumKeys = maximumKeys
        }
    }

    private struct Entry: Sendable {
        var failures: [NIODeadline] = []
        var blockedUntil: NIODeadline?
        var lastSeen: NIODeadline
    }

    public let settings: Settings
    private var entries: [Key: Entry] = [:]

    public init(_ settings: Settings) {
        precondition(settings.maximumFailures >= 1 && settings.maximumKeys >= 1)
        self.settings = settings
    }

    /// Keys tracked now.
    public var count: Int { entries.count }

    /// Whether `key` is blocked at `now`.
    public mutating func isBlocked(_ key: Key, now: NIODeadline) -> Bool {
        guard let until = entries[key]?.blockedUntil else { return false }
        if until > now { return true }
        entries[key] = nil   // served its time: starts afresh
        return false
    }

    /// Records one failure; returns true when this failure blocks the key.
    @discardableResult
    public mutating func recordFailure(_ key: Key, now: NIODeadline) -> Bool {
        var entry = entries[key] ?? Entry(lastSeen: now)
        entry.lastSeen = now
        entry.failures.removeAll { $0 + settings.window <= now }
        entry.failures.append(now)
        var blocked = false
        if entry.failures.count >= settings.maximumFailures, entry.blockedUntil.map({ $0 <= now }) ?? true {
            entry.blockedUntil = now + settings.blockDuration
            entry.failures.removeAll()
            blocked = true
        }
        if entries[key] == nil, entries.count >= settings.maximumKeys { evictOldest(now: now) }
        entries[key] = entry
        return blocked
    }

    /// Forgets a key's failures (a success).
    public mutating func recordSuccess(_ key: Key) {
        if entries[key]?.blockedUntil == nil { entries[key] = nil }
    }

    private mutating func evictOldest(now: NIODeadline) {
        // Expired blocks and stale windows first, else the key seen longest ago.
        let stale = entries.filter { _, entry in
            (entry.blockedUntil.map { $0 <= now } ?? true) && entry.failures.allSatisfy { $0 + settings.window <= now }
        }
        if !stale.isEmpty {
            for key in stale.keys { entries[key] = nil }
            return
        }
        if let oldest = entries.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key { entries[oldest] = nil }
    }
}
