import Foundation
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// Removing testbeds: processes first (a namespace with processes in it lingers), then namespaces.
public enum Teardown {
    @discardableResult
    public static func remove(topology: String) -> Int {
        remove(prefix: TopologyPlan.namespacePrefix + topology + "-")
    }

    @discardableResult
    public static func remove(prefix: String) -> Int {
        let namespaces = Shell.namespaces(prefix: prefix)
        for namespace in namespaces {
            for pid in Shell.run(["ip", "netns", "pids", namespace]).output.split(separator: "\n").compactMap({ Int32($0) }) {
                kill(pid, SIGKILL)
            }
        }
        for namespace in namespaces {
            _ = Shell.run(["ip", "netns", "del", namespace])
            try? FileManager.default.removeItem(atPath: "/tmp/\(namespace).log")   // a link emulator's output
        }
        return namespaces.count
    }
}

