import NIOCore

/// Rate-limits a kind of log line: at most one line per kind per `interval`; the lines left out
/// meanwhile are counted and reported with the next one that goes out ("…, 1234 more since").
/// Pure: the caller passes the time and logs when told to.
public struct LogThrottle<Kind: Hashable & Sendable>: Sendable {
    public let interval: TimeAmount
    private var state: [Kind: (last: NIODeadline, suppressed: Int)] = [:]

    public init(interval: TimeAmount = .seconds(10)) {
        self.interval = interval
    }

    /// nil: leave this line out. A number: log it, and say that many were left out before it.
    public mutating func admit(_ kind: Kind, now: NIODeadline) -> Int? {
        if let entry = state[kind], entry.last + interval > now {
            state[kind] = (entry.last, entry.suppressed + 1)
            return nil
        }
        let suppressed = state[kind]?.suppressed ?? 0
        state[kind] = (now, 0)
        return suppressed
    }
}
