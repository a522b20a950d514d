import Foundation
import ProcessSupport
import TestbedRunner

#if canImport(Glibc)
import Glibc
#endif

/// The path manager's own cost with many MPTCP connections through the gateway pair, in two
/// namespaces the benchmark makes (and removes, also when it fails): a client namespace with
/// two paths, `edgepool paths run --userspace` probing both, and a gateway entry that
/// carries every client connection over MPTCP to the exit in the server namespace, which
/// hands it to a sink. Clients in the client namespace hold `connections` connections open,
/// each sending 64 bytes a second.
///
/// CPU time (the nanoseconds its threads ran) is read for the path manager and, as the
/// baseline of the same run, of the entry gateway, over: idle (probes only), setting the
/// connections up (every one gets a second subflow), steady (all open, trickling), and one
/// loss and return of path 2 (every connection's subflow there destroyed, RM_ADDR, then
/// fresh ones — until the kernel has answered as many joins as there are connections).
public struct PathManagerBenchmark: Sendable {
    public var connections: Int
    public var seconds: Double
    /// The path manager's log level; above `warning` its log's last lines are printed at the
    /// end (subflow requests left out) — to see when it retired and restored path 2.
    public var pathManagerLogLevel: String

    public init(connections: Int = 1_000, seconds: Double = 10, pathManagerLogLevel: String = "warning") {
        self.connections = connections
        self.seconds = seconds
        self.pathManagerLogLevel = pathManagerLogLevel
    }

    static let prefix = "ep-pmbench-"
    static let client = prefix + "c", server = prefix + "s"
    static let sinkPort = 7001, exitPort = 7000, entryPort = 1080, statusPort = 9093

    /// What is missing for the benchmark, or nil.
    public static var unavailableReason: String? {
        if geteuid() != 0 { return "needs root (network namespaces, the userspace MPTCP path manager)" }
        if Shell.ipTool == nil { return "needs ip (Debian: iproute2)" }
        if (try? String(contentsOfFile: "/proc/sys/net/mptcp/enabled", encoding: .utf8))?.hasPrefix("1") != true { return "needs MPTCP (net.mptcp.enabled=1)" }
        return nil
    }

    public func run() throws {
        if let reason = Self.unavailableReason { throw BenchmarkError("paths benchmark: \(reason)") }
        Teardown.remove(prefix: Self.prefix)
        defer { Teardown.remove(prefix: Self.prefix) }
        try Self.makeNamespaces()
        let secret = NSTemporaryDirectory() + "edgepool-pmbench-secret"
        try "pm-benchmark-secret-0123456789".write(toFile: secret, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let limit = "\(connections * 2 + 100)"
        let sink = try Self.inNamespace(Self.server, "sink", ["bench", "paths", "--serve-sink", "\(Self.sinkPort)"])
        defer { sink.signal(SIGKILL) }
        _ = try sink.waitForLineBlocking(containing: "sink listening")
        let exit = try Self.inNamespace(Self.server, "exit", ["gateway", "exit", "--listen", "0.0.0.0:\(Self.exitPort)", "--secret-file", secret,
                                                              "--allow", "127.0.0.1/32", "--max-connections-per-client", limit, "--log-level", "warning"])
        defer { exit.signal(SIGTERM) }
        _ = try exit.waitForReadyBlocking()
        let paths = try Self.inNamespace(Self.client, "paths", ["paths", "run", "--userspace", "--path", "c1=10.79.1.1,probe=10.79.1.2:9",
                                                                "--path", "c2=10.79.2.1,probe=10.79.2.2:9", "--status", "127.0.0.1:\(Self.statusPort)",
                                                                "--log-level", pathManagerLogLevel], standardError: .merged)
        defer { paths.signal(SIGTERM) }
        _ = try paths.waitForReadyBlocking()
        let entry = try Self.inNamespace(Self.client, "entry", ["gateway", "entry", "--listen", "127.0.0.1:\(Self.entryPort)", "--exit", "10.79.1.2:\(Self.exitPort)",
                                                                "--secret-file", secret, "--forward", "127.0.0.1:\(Self.sinkPort)",
                                                                "--max-connections-per-client", limit, "--log-level", "warning"])
        defer { entry.signal(SIGTERM) }
        _ = try entry.waitForReadyBlocking()
        print("paths benchmark: \(connections) connections through the gateway pair (entry → MPTCP → exit), two paths, userspace PM probing both every 100 ms; CPU time from /proc/PID/task/*/schedstat")
        let pm = CPUClock(pid: paths.pid), gateway = CPUClock(pid: entry.pid)

        // Idle: probes only.
        let idle = measure(pm, gateway, seconds: min(seconds, 5)) { Thread.sleep(forTimeInterval: min(seconds, 5)) }
        // Setting up: every connection gets its second subflow (the kernel answers the join).
        let joins0 = Self.joinsAnswered()
        let clients = try Self.inNamespace(Self.client, "clients", ["bench", "paths", "--serve-clients", "\(connections)", "--port", "\(Self.entryPort)"])
        defer { clients.signal(SIGKILL) }
        var setupSeconds = 0.0
        let setup = measure(pm, gateway, seconds: nil) {
            let started = Date()
            _ = try? clients.waitForLineBlocking(containing: "clients connected", timeout: 120)
            while Self.joinsAnswered() - joins0 < connections, Date().timeIntervalSince(started) < 120 { usleep(50_000) }
            setupSeconds = Date().timeIntervalSince(started)
        }
        let joined = Self.joinsAnswered() - joins0
        guard joined >= connections else {
            throw BenchmarkError("paths benchmark: only \(joined) of \(connections) connections got their second subflow within 120 s; clients: \(clients.lines.suffix(3))")
        }
        // Steady: everything open, trickling.
        let steady = measure(pm, gateway, seconds: seconds) { Thread.sleep(forTimeInterval: seconds) }
        // Path 2 lost and back.
        let joins1 = Self.joinsAnswered()
        var recovery = 0.0
        let failover = measure(pm, gateway, seconds: nil) {
            _ = Shell.run(["ip", "-n", Self.client, "link", "set", "c2", "down"])
            Thread.sleep(forTimeInterval: 2)
            _ = Shell.run(["ip", "-n", Self.client, "link", "set", "c2", "up"])
            let returned = Date()
            while Self.joinsAnswered() - joins1 < connections, Date().timeIntervalSince(returned) < 60 { usleep(20_000) }
            recovery = Date().timeIntervalSince(returned)
        }
        let rejoined = Self.joinsAnswered() - joins1
        let alive = clients.lines.last { $0.hasPrefix("clients open") } ?? "?"

        func percent(_ sample: CPUSample) -> String { String(format: "%.2f %%", sample.pmPercent) }
        print("                          path manager        entry gateway (baseline)")
        print("  idle (probes)     \(String(format: "%7.2f %% of a core   %7.2f %%", idle.pmPercent, idle.gatewayPercent))")
        print("  setup             \(String(format: "%7.1f ms (%.0f µs per connection)   %7.1f ms; %d connections in %.2f s", setup.pmSeconds * 1e3, setup.pmSeconds / Double(connections) * 1e6, setup.gatewaySeconds * 1e3, connections, setupSeconds))")
        print("  steady (\(Int(seconds)) s)     \(String(format: "%7.2f %% of a core   %7.2f %%", steady.pmPercent, steady.gatewayPercent))")
        print("  path 2 lost 2 s   \(String(format: "%7.1f ms (%.0f µs per connection)   %7.1f ms; %d of %d rejoined %.2f s after the return", failover.pmSeconds * 1e3, failover.pmSeconds / Double(connections) * 1e6, failover.gatewaySeconds * 1e3, rejoined, connections, recovery))")
        print("  clients at the end: \(alive)")
        if !["warning", "error", "critical"].contains(pathManagerLogLevel) {
            for line in paths.lines.filter({ !$0.contains("subflow requested") && !$0.contains("priority set") }).suffix(40) { print("  path manager: \(line)") }
        }
        let overflows = paths.lines.filter { $0.contains("MPTCP events were lost") }.count
        print("  the path manager's events socket overflowed \(overflows) time(s) (each followed by a re-read of the connections)")
        print("  target: the path manager's own cost with \(connections) connections ≤ 2 % of a core: \(steady.pmPercent <= 2 ? "met" : "NOT met") (\(percent(steady)) steady)")
        let n = connections
        BenchmarkFigures.record("paths \(n) connections steady path manager CPU", steady.pmPercent, unit: "% of a core", kind: .absolute, better: .lower)
        BenchmarkFigures.record("paths idle path manager CPU", idle.pmPercent, unit: "% of a core", kind: .absolute, better: .lower)
        if steady.gatewaySeconds > 0 {
            BenchmarkFigures.record("paths \(n) connections steady path manager CPU / entry gateway CPU", steady.pmSeconds / steady.gatewaySeconds, unit: "×", kind: .ratio, better: .lower)
        }
        BenchmarkFigures.record("paths setup path manager CPU per connection", setup.pmSeconds / Double(n) * 1e6, unit: "µs", kind: .absolute, better: .lower)
        BenchmarkFigures.record("paths loss and return path manager CPU per connection", failover.pmSeconds / Double(n) * 1e6, unit: "µs", kind: .absolute, better: .lower)
        BenchmarkFigures.record("paths \(n) connections rejoined after the return", recovery, unit: "s", kind: .absolute, better: .lower)
    }

    struct CPUSample {
        var wall: Double, pmSeconds: Double, gatewaySeconds: Double
        var pmPercent: Double { pmSeconds / wall * 100 }
        var gatewayPercent: Double { gatewaySeconds / wall * 100 }
    }

    private func measure(_ pm: CPUClock, _ gateway: CPUClock, seconds: Double?, _ body: () throws -> Void) rethrows -> CPUSample {
        let (pm0, gateway0, start) = (pm.threads(), gateway.threads(), Date())
        try body()
        return CPUSample(wall: Date().timeIntervalSince(start), pmSeconds: pm.seconds(since: pm0), gatewaySeconds: gateway.seconds(since: gateway0))
    }

    /// Joins the client's kernel saw answered (MP_JOIN SYN-ACKs received), from /proc/net/netstat's MPTcpExt line in the client namespace.
    static func joinsAnswered() -> Int {
        let lines = Shell.run(["ip", "netns", "exec", client, "cat", "/proc/net/netstat"]).output.split(separator: "\n").filter { $0.hasPrefix("MPTcpExt:") }
        guard lines.count == 2 else { return 0 }
        let names = lines[0].split(separator: " "), values = lines[1].split(separator: " ")
        guard let index = names.firstIndex(of: "MPJoinSynAckRx"), index < values.count else { return 0 }
        return Int(values[index]) ?? 0
    }

    static func makeNamespaces() throws {
        var commands: [[String]] = [["ip", "netns", "add", client], ["ip", "netns", "add", server]]
        for index in 1...2 {
            commands.append(["ip", "link", "add", "c\(index)", "netns", client, "type", "veth", "peer", "name", "s\(index)", "netns", server])
            commands.append(["ip", "-n", client, "addr", "add", "10.79.\(index).1/24", "dev", "c\(index)"])
            commands.append(["ip", "-n", server, "addr", "add", "10.79.\(index).2/24", "dev", "s\(index)"])
            commands.append(["ip", "-n", client, "link", "set", "c\(index)", "up"])
            commands.append(["ip", "-n", server, "link", "set", "s\(index)", "up"])
        }
        for namespace in [client, server] {
            commands.append(["ip", "-n", namespace, "link", "set", "lo", "up"])
            commands.append(["ip", "-n", namespace, "mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4"])
        }
        commands.append(["ip", "-n", client, "rule", "add", "from", "10.79.2.1", "table", "102"])
        commands.append(["ip", "-n", client, "route", "add", "10.79.1.0/24", "dev", "c2", "table", "102"])
        for command in commands {
            let result = Shell.run(command)
            guard result.status == 0 else { throw BenchmarkError("paths benchmark: \(command.joined(separator: " ")): \(result.errors)") }
        }
    }

    static func inNamespace(_ namespace: String, _ name: String, _ arguments: [String], standardError: ChildProcess.StandardError = .discarded) throws -> ChildProcess {
        try ChildProcess(name, ["netns", "exec", namespace, ChildProcess.currentExecutable] + arguments, executable: Shell.ipTool ?? "/usr/sbin/ip",
                         standardError: standardError)
    }
}

/// A process's CPU time: the nanoseconds its threads ran (/proc/PID/task/*/schedstat, first
/// field), summed — /proc/PID/stat's user and system times tick at 10 ms, too coarse for a
/// daemon that runs a few milliseconds a second.
struct CPUClock {
    let pid: pid_t

    /// Seconds run per thread now.
    func threads() -> [String: Double] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var seconds: [String: Double] = [:]
        for task in tasks {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
                  let first = text.split(separator: " ").first, let nanoseconds = Double(first) else { continue }
            seconds[task] = nanoseconds / 1e9
        }
        return seconds
    }

    /// CPU seconds since `earlier` (threads started since count whole; ones that ended since
    /// are not seen).
    func seconds(since earlier: [String: Double]) -> Double {
        threads().reduce(0.0) { $0 + max(0, $1.value - (earlier[$1.key] ?? 0)) }
    }
}
