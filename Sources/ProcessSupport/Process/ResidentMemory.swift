import Foundation

/// A process's resident set (`VmRSS` in `/proc/PID/status`): the memory figure of the
/// benchmarks and of the tests that bound a daemon's memory.
public enum ResidentMemory {
    /// VmRSS in bytes; nil when the process is gone (or this is not Linux).
    public static func bytes(of pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return parseStatus(status)
    }

    /// VmRSS in bytes from the text of a `/proc/PID/status` file.
    public static func parseStatus(_ status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kib * 1024
    }
}
