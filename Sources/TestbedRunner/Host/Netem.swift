import Foundation
import ProcessSupport
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// Whether `tc … netem` works here: tried on the loopback of a scratch namespace.
public enum Netem {
    /// This very executable's `testbed emulate`.
    public static var emulatorCommand: [String] {
        [ChildProcess.currentExecutable, "testbed", "emulate"]
    }

    /// This very executable's `paths run` (EdgePool's path manager, for `pm=edgepool` hosts).
    public static var pathManagerCommand: [String] {
        [ChildProcess.currentExecutable, "paths", "run"]
    }

    public static func available() -> Bool {
        guard getuid() == 0 else { return false }
        let scratch = "\(TopologyPlan.namespacePrefix)probe-\(getpid())"
        guard Shell.run(["ip", "netns", "add", scratch]).status == 0 else { return false }
        defer { _ = Shell.run(["ip", "netns", "del", scratch]) }
        return Shell.run(["tc", "-n", scratch, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]).status == 0
    }
}

