import NIOCore

/// A token bucket: `rate` tokens a second, at most `burst` saved up. Pure: the caller passes
/// the time. Used for per-association and per-source rate limits (registrar requests, Endpoint
/// Unreachable reports, refusal logs).
public struct TokenBucket: Sendable, Hashable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updated: NIODeadline?

    /// A bucket that starts full.
    public init(rate: Double, burst: Double) {
        precondition(rate > 0 && burst >= 1, "a token bucket needs a positive rate and a burst of at least one")
        self.rate = rate
        self.burst = burst
        tokens = burst
    }

    /// Takes `cost` tokens if the bucket holds them; false (and nothing taken) if not.
    public mutating func take(_ cost: Double = 1, now: NIODeadline) -> Bool {
        refill(now: now)
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }

    /// Spends `cost` tokens whether or not the bucket holds them: work already done (a reply
    /// that turned out large) goes into debt, paid back by the refill before the next `take`.
    public mutating func spend(_ cost: Double, now: NIODeadline) {
        refill(now: now)
        tokens -= cost
    }

    /// Tokens available at `now` (refills as a side effect).
    public mutating func available(now: NIODeadline) -> Double {
        refill(now: now)
        return tokens
    }

    private mutating func refill(now: NIODeadline) {
        if let updated, now > updated {
            let seconds = Double((now - updated).nanoseconds) / 1e9
            tokens = min(burst, tokens + seconds * rate)
        }
        if updated == nil || now > updated! { updated = now }
    }
}
