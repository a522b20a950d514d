import Foundation
import NIOConcurrencyHelpers
import ProcessSupport

#if canImport(Glibc)
import Glibc
#endif

/// Connections per second per core: `clients` threads open a connection through the proxy
/// (with its SOCKS5 handshake), echo one byte and close it (RST: no TIME_WAIT on the client's
/// ports), as fast as they can for `seconds`; the rate is set beside the CPU time the proxy's
/// processes (and their children) spent meanwhile, from /proc. Per core-second is what carries
/// from machine to machine: the proxy's own set-up cost, whatever else the cores did.
struct BenchConnectionRate {
    static let clients = 4

    struct Result {
        var connectionsPerSecond: Double
        /// CPU the proxy used, in cores (1.0: one core busy the whole time).
        var cores: Double
        var perCoreSecond: Double { cores > 0 ? connectionsPerSecond / cores : 0 }
    }

    static func measure(_ target: BenchTarget, processes: [pid_t], clientMPTCP: Bool, seconds: Double) throws -> Result {
        let tree = { processes.flatMap { [$0] + ProcessTree.descendants(of: $0) } }
        let cpuBefore = cpuSeconds(tree())
        let completed = NIOLockedValueBox(0)
        let failure = NIOLockedValueBox<String?>(nil)
        let start = Date()
        let done = DispatchGroup()
        for _ in 0..<clients {
            done.enter()
            Thread {
                defer { done.leave() }
                var buffer = [UInt8](repeating: 0, count: 16)
                var count = 0
                while Date().timeIntervalSince(start) < seconds {
                    do {
                        let fd = try target.open(clientMPTCP: clientMPTCP)
                        defer {
                            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                            close(fd)
                        }
                        try BenchSocket.send(fd, [UInt8(ascii: "E"), 1])
                        try BenchSocket.receive(fd, exactly: 1, into: &buffer)
                        count += 1
                    } catch {
                        failure.withLockedValue { $0 = $0 ?? "\(error)" }
                        break
                    }
                }
                completed.withLockedValue { $0 += count }
            }.start()
        }
        done.wait()
        let elapsed = Date().timeIntervalSince(start)
        if let failure = failure.withLockedValue({ $0 }) { throw BenchmarkError("connection rate: \(failure)") }
        let cores = (cpuSeconds(tree()) - cpuBefore) / elapsed
        return Result(connectionsPerSecond: Double(completed.withLockedValue { $0 }) / elapsed, cores: cores)
    }

    /// utime + stime of these processes, all their threads, in seconds.
    static func cpuSeconds(_ pids: [pid_t]) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return pids.reduce(0) { total, pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return total }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return total }
            return total + (user + system) / ticks
        }
    }
}
