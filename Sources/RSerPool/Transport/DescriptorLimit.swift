#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit: raised to its hard maximum at daemon start, so that the
/// connection caps, not the descriptor table, decide how many clients are held.
public enum DescriptorLimit {
    /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
    @discardableResult
    public static func raise() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Descriptors kept free for listeners, logs, the status server and outgoing connections.
    public static let reserve = 256

    /// `requested` connections, or fewer if the descriptor limit cannot hold them (each
    /// connection costs `perConnection` descriptors) — with the reason, for a log line.
    public static func cap(_ requested: Int, perConnection: Int = 1, limit: Int) -> (value: Int, reason: String?) {
        let room = max((limit - reserve) / max(perConnection, 1), 1)
        guard requested > room else { return (requested, nil) }
        return (room, "the open-file limit of \(limit) holds \(room) connections (\(perConnection) descriptor(s) each, \(reserve) kept free), not \(requested)")
    }
}
