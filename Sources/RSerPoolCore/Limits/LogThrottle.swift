import NIOCore

/// Rate-limits a kind of log line: `rate` lines per second per kind after a burst of `burst`;
/// the lines left out meanwhile are counted and reported with the next one that goes out
/// ("…, 1234 more since"). Pure: the caller passes the time and logs when told to. Meant for a
/// handful of kinds (one entry per kind is kept).
public struct LogThrottle<Kind: Hashable & Sendable>: Sendable {
    public let rate: Double
    public let burst: Double
    private var state: [Kind: (bucket: TokenBucket, suppressed: Int)] = [:]

    /// At most one line per kind per `interval`.
    public init(interval: TimeAmount = .seconds(10)) {
        self.init(rate: 1e9 / Double(max(interval.nanoseconds, 1)), burst: 1)
    }

    /// `rate` lines per second per kind, `burst` at once.
    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// nil: leave this line out. A number: log it, and say that many were left out before it.
    public mutating func admit(_ kind: Kind, now: NIODeadline) -> Int? {
        var entry = state[kind] ?? (TokenBucket(rate: rate, burst: burst), 0)
        defer { state[kind] = entry }
        guard entry.bucket.take(now: now) else {
            entry.suppressed += 1
            return nil
        }
        let suppressed = entry.suppressed
        entry.suppressed = 0
        return suppressed
    }
}
