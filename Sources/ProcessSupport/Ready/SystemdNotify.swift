import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`Type=notify`, sd_notify(3)): datagrams of `KEY=VALUE` lines
/// to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
/// Every EdgePool daemon says `READY=1` with its ready line, `STOPPING=1` when it begins to
/// shut down, and `WATCHDOG=1` while it runs if the unit sets `WatchdogSec=`. Without
/// `$NOTIFY_SOCKET` (not under systemd) nothing is sent.
public enum SystemdNotify {
    /// The socket systemd listens on, if the process runs under it.
    public static var socketPath: String? {
        ProcessInfo.processInfo.environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// How often systemd expects `WATCHDOG=1` (half of `WatchdogSec=`), if it does.
    public static var watchdogInterval: Double? {
        guard let text = ProcessInfo.processInfo.environment["WATCHDOG_USEC"], let usec = Double(text), usec > 0 else { return nil }
        if let pid = ProcessInfo.processInfo.environment["WATCHDOG_PID"], Int32(pid) != getpid() { return nil }
        return usec / 1e6 / 2
    }

    /// Sends `state` (e.g. "READY=1\nSTATUS=listening on …"); false when not under systemd or
    /// the datagram could not be sent.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let path = socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }   // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sockaddrPointer, length) }
            }
        }
        return sent == message.count
    }
}
