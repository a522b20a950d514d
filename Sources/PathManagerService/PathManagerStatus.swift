import Foundation
import Synchronization

/// What `edgepool paths status` shows (the daemon's `/paths`, JSON): each path's state, why
/// it is out of use and since when, how often it was retired and restored; the connections
/// the userspace PM follows and the subflows it made.
public struct PathManagerStatus: Codable, Sendable, Equatable {
    public struct Path: Codable, Sendable, Equatable {
        public var name: String
        public var address: String
        public var role: String
        /// `in use`, `down`, `returning`.
        public var state: String
        /// Why it is down (link down, probes unanswered, …).
        public var reason: String?
        /// Seconds in the current state.
        public var seconds: Double
        public var retirements: Int
        public var restorations: Int
        /// Times its interface got a new address.
        public var renumberings: Int? = nil
        /// Its egress cap ("8 Mbit/s"), if it has one.
        public var rateCap: String? = nil
    }

    public var mode: String
    public var paths: [Path]
    /// MPTCP connections the userspace PM follows (0 in in-kernel mode: the kernel does).
    public var connections: Int
    public var subflowsCreated: Int
    public var subflowsDestroyed: Int

    /// The status as `edgepool paths status` prints it.
    public var report: String {
        var lines = ["\(mode): \(paths.filter { $0.state == "in use" }.count) of \(paths.count) path(s) in use"
                     + (mode == "userspace PM" ? ", \(connections) connection(s), \(subflowsCreated) subflow(s) created, \(subflowsDestroyed) destroyed" : "")]
        for path in paths {
            let state = path.state + (path.reason.map { " (\($0))" } ?? "")
            lines.append("  \(path.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(path.address.padding(toLength: 16, withPad: " ", startingAt: 0)) "
                         + "\(path.role.padding(toLength: 7, withPad: " ", startingAt: 0)) \(state) for \(String(format: "%.1f", path.seconds)) s; "
                         + "retired \(path.retirements)×, restored \(path.restorations)×"
                         + (path.renumberings.map { $0 > 0 ? ", renumbered \($0)×" : "" } ?? "") + (path.rateCap.map { "; capped at \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    /// The latest status, written by the daemon's thread and read by the status server's.
    public final class Latest: Sendable {
        private let value = Mutex(PathManagerStatus(mode: "starting", paths: [], connections: 0, subflowsCreated: 0, subflowsDestroyed: 0))
        public init() {}
        public var current: PathManagerStatus { value.withLock { $0 } }
        /// The current status as `/paths` serves it.
        public var json: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return String(decoding: (try? encoder.encode(current)) ?? Data(), as: UTF8.self)
        }
        func set(_ status: PathManagerStatus) { value.withLock { $0 = status } }
    }
}
