/// Whether a legacy server behind a proxy PE is healthy, from its health checks, with
/// hysteresis: `failuresForDown` failed checks in a row take it out of the pool,
/// `successesForUp` passed ones in a row put it (back) in. Pure: checks in, transitions out.
public struct ProxyHealth: Sendable, Hashable {
    public enum Transition: Sendable, Hashable {
        /// Register the server now.
        case up
        /// Deregister it now.
        case down
    }

    public let failuresForDown: Int
    public let successesForUp: Int
    public private(set) var isUp = false
    private var streak = 0

    public init(failuresForDown: Int = 3, successesForUp: Int = 2) {
        self.failuresForDown = max(1, failuresForDown)
        self.successesForUp = max(1, successesForUp)
    }

    /// One check's result; a transition when the streak reaches its threshold.
    public mutating func checked(_ passed: Bool) -> Transition? {
        if passed == isUp {
            streak = 0
            return nil
        }
        streak += 1
        guard streak >= (isUp ? failuresForDown : successesForUp) else { return nil }
        isUp = passed
        streak = 0
        return passed ? .up : .down
    }
}
