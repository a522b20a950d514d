import Foundation
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// A namespace other than the first may only pick congestion controls the host allows
/// (net.ipv4.tcp_allowed_congestion_control, a host-wide list): widen it when a topology asks.
public enum CongestionControls {
    public static let allowedPath = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
    public static let availablePath = "/proc/sys/net/ipv4/tcp_available_congestion_control"

    public static func words(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    public static func allow(_ topology: Topology, file: String) throws {
        let available = words(availablePath)
        var allowed = words(allowedPath)
        for host in topology.hosts {
            guard let cc = host.congestionControl else { continue }
            guard available.contains(cc) else {
                throw TestbedError("\(file): line \(host.line): congestion control '\(cc)' is not available in this kernel (available: \(available.joined(separator: " ")))")
            }
            if !allowed.contains(cc) { allowed.append(cc) }
        }
        let current = words(allowedPath)
        guard allowed != current else { return }
        do {
            try allowed.joined(separator: " ").write(toFile: allowedPath, atomically: false, encoding: .utf8)
            print("note: allowed congestion controls widened to: \(allowed.joined(separator: " ")) (\(allowedPath))")
            fflush(nil)
        } catch {
            throw TestbedError("cannot allow congestion controls \(allowed) in \(allowedPath): \(error)")
        }
    }
}
