import Foundation

/// The process tree, read from `/proc`.
public enum ProcessTree {
    /// The processes below `root`, children before their parents (the order to kill them in).
    public static func descendants(of root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { children[parent, default: []].append(pid) }
        }
        var result: [pid_t] = []
        func walk(_ pid: pid_t) {
            for child in children[pid] ?? [] {
                walk(child)
                result.append(child)
            }
        }
        walk(root)
        return result
    }
}
