import ArgumentParser
import Foundation
import Testbed

struct TestbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testbed",
        abstract: "Multi-homing testbeds in network namespaces: bring a topology up and down, run commands in its hosts.",
        discussion: """
        A topology file declares hosts (one network namespace each), links (veth
        pairs with rate, delay, jitter, loss and queue per direction), routes (with
        per-source tables for multi-homed hosts) and MPTCP endpoints; see
        Topologies/two-isp.topo. Rates use tbf; delay, jitter and loss use tc
        netem, or a userspace link emulator where the kernel lacks it. Everything
        a testbed creates lives in namespaces named ept-TOPOLOGY-HOST, so `down`
        removes it all, also after a crash. Needs root and iproute2.

          edgepool testbed up Topologies/two-isp.topo
          edgepool testbed exec two-isp client -- curl http://10.81.2.1:8000/
          edgepool testbed down two-isp

        Scenarios (traffic, user commands, link events, recording, report with plots):
          edgepool testbed run Scenarios/isp-failover.scenario --phase-seconds 5
          edgepool testbed run Scenarios/isp-failover-video.scenario
        Built-in experiments:
          edgepool testbed experiment access-aggregation
          edgepool testbed experiment recovery
          edgepool testbed experiment offloading --users 1 8 32 --duration 120s
        """,
        subcommands: [TestbedUp.self, TestbedDown.self, TestbedExec.self, TestbedPlan.self, TestbedList.self, TestbedRun.self, TestbedExperiment.self, TestbedTraffic.self, TestbedEmulate.self]
    )
}

/// Reads and checks a topology file (its name defaults to the file's).
func loadTopology(_ path: String) throws -> Topology {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read '\(path)'") }
    let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    do {
        return try TopologyParser.parse(text, defaultName: name)
    } catch {
        throw ValidationError("\(path): \(error)")
    }
}

struct TestbedPlan: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print the commands `up` would run, without running them.")
    @Argument(help: "Topology file.") var file: String
    @Flag(help: "Plan as if the kernel had tc netem.") var netem = false

    func run() throws {
        let topology = try loadTopology(file)
        do {
            let plan = try TopologyPlan(topology, capabilities: .init(netem: netem || Netem.available(), emulator: Netem.emulatorCommand))
            for step in plan.up { print(step.description + (step.mayFail ? "    # may fail" : "")) }
        } catch {
            throw ValidationError("\(file): \(error)")
        }
    }
}

struct TestbedUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Create a topology's namespaces, links, shaping, routes and MPTCP settings.",
        discussion: "On any failure, or Ctrl-C, whatever was created is removed again.")
    @Argument(help: "Topology file.") var file: String

    func run() throws {
        try requireRoot()
        let topology = try loadTopology(file)
        let plan = try bringUp(topology, file: file)
        print("testbed \(topology.name) is up: " + topology.hosts.map { "\($0.name) (\(plan.namespace($0.name)))" }.joined(separator: ", "))
        for link in topology.links {
            func end(_ i: Topology.Interface) -> String { "\(i.host):\(i.name) \(i.addresses.map { "\($0.address)" }.joined(separator: ","))" }
            func rate(_ s: Topology.Shaping) -> String { s.rateBitsPerSecond.map { "\(Double($0) / 1e6) Mbit/s" } ?? "unlimited" }
            print("  \(end(link.a)) ↔ \(end(link.b))  \(rate(link.forward)) / \(rate(link.backward))")
        }
    }
}

/// Runs a topology's plan; on a failure or Ctrl-C removes what was created and throws.
func bringUp(_ topology: Topology, file: String) throws -> TopologyPlan {
    let plan: TopologyPlan
    do {
        plan = try TopologyPlan(topology, capabilities: .init(netem: Netem.available(), emulator: Netem.emulatorCommand))
    } catch {
        throw ValidationError("\(file): \(error)")
    }
    if let existing = Shell.namespaces(prefix: TopologyPlan.namespacePrefix + topology.name + "-").first {
        throw ValidationError("testbed '\(topology.name)' is up already (\(existing)); `edgepool testbed down \(topology.name)` first")
    }
    try CongestionControls.allow(topology, file: file)
    Interrupts.onInterrupt { Teardown.remove(topology: topology.name) }
    for step in plan.up {
        if Interrupts.received {
            Teardown.remove(topology: topology.name)
            throw ValidationError("interrupted; removed what was created")
        }
        let result = step.background ? Shell.start(step.arguments, log: "/tmp/\(step.arguments[3]).log") : Shell.run(step.arguments)
        guard result.status == 0 else {
            if step.mayFail {
                FileHandle.standardError.write(Data("warning: \(step) failed (\(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))); going on\n".utf8))
                continue
            }
            Teardown.remove(topology: topology.name)
            throw ValidationError("\(step)\n  failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))\nremoved what was created")
        }
    }
    return plan
}

struct TestbedDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Remove a testbed: its processes, namespaces and links (also after a crash).")
    @Argument(help: "Topology name or file.") var topology: String?
    @Flag(help: "Remove every testbed (every ept-* namespace).") var all = false

    func run() throws {
        try requireRoot()
        if all {
            let removed = Teardown.remove(prefix: TopologyPlan.namespacePrefix)
            print("removed \(removed) namespace(s)")
            return
        }
        guard let topology else { throw ValidationError("name a topology (or a topology file), or give --all") }
        let name = topology.hasSuffix(".topo") || topology.contains("/") ? try loadTopology(topology).name : topology
        let removed = Teardown.remove(topology: name)
        print(removed == 0 ? "testbed \(name) was not up" : "testbed \(name) is down (\(removed) namespace(s) removed)")
    }
}

struct TestbedExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a command inside a testbed host.",
        discussion: "  edgepool testbed exec two-isp server -- iperf3 -s")
    @Argument(help: "Topology name.") var topology: String
    @Argument(help: "Host.") var host: String
    @Argument(parsing: .postTerminator, help: "The command (after --).") var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ValidationError("give the command after --") }
        let namespace = TopologyPlan.namespace(topology: topology, host: host)
        guard Shell.namespaces(prefix: namespace).contains(namespace) else {
            throw ValidationError("no host '\(host)' in a testbed '\(topology)' (is it up?)")
        }
        guard let ip = Shell.ipTool else { throw ValidationError("no ip tool (iproute2)") }
        let arguments = [ip, "netns", "exec", namespace] + command
        let argv = arguments.map { strdup($0) } + [nil]
        execv(ip, argv)
        throw ValidationError("cannot run \(ip): errno \(errno)")
    }
}

struct TestbedList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the testbed namespaces present.")
    func run() throws {
        for namespace in Shell.namespaces(prefix: TopologyPlan.namespacePrefix) { print(namespace) }
    }
}

func requireRoot() throws {
    guard getuid() == 0 else { throw ValidationError("testbeds need root (network namespaces)") }
    guard Shell.ipTool != nil else { throw ValidationError("no ip tool: install iproute2") }
}

/// Running ip and tc.
enum Shell {
    static let ipTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let tcTool = ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs argv (the first word found on the PATH, ip and tc in sbin); returns status and stderr.
    static func run(_ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        var arguments = arguments
        let executable: String
        switch arguments.first {
        case "ip": executable = ipTool ?? "/usr/sbin/ip"
        case "tc": executable = tcTool ?? "/usr/sbin/tc"
        default: executable = "/usr/bin/env"; arguments.insert("env", at: 0)
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return (127, "", "\(error)") }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Starts argv and leaves it running, output to `log`; fails if it is gone after 300 ms.
    static func start(_ arguments: [String], log: String) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments.first == "ip" ? (ipTool ?? "/usr/sbin/ip") : arguments[0])
        process.arguments = Array(arguments.dropFirst())
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { return (1, "", "cannot write \(log)") }
        process.standardOutput = handle
        process.standardError = handle
        do { try process.run() } catch { return (127, "", "\(error)") }
        usleep(300_000)
        guard process.isRunning else {
            return (process.terminationStatus, "", (try? String(contentsOfFile: log, encoding: .utf8)) ?? "exited")
        }
        return (0, "", "")
    }

    static func namespaces(prefix: String) -> [String] {
        run(["ip", "netns", "list"]).output.split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(prefix) }
            .sorted()
    }
}

/// Removing testbeds: processes first (a namespace with processes in it lingers), then namespaces.
enum Teardown {
    @discardableResult
    static func remove(topology: String) -> Int {
        remove(prefix: TopologyPlan.namespacePrefix + topology + "-")
    }

    @discardableResult
    static func remove(prefix: String) -> Int {
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

/// Whether `tc … netem` works here: tried on the loopback of a scratch namespace.
enum Netem {
    /// This very executable's `testbed emulate`.
    static var emulatorCommand: [String] {
        [(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0], "testbed", "emulate"]
    }

    static func available() -> Bool {
        guard getuid() == 0 else { return false }
        let scratch = "\(TopologyPlan.namespacePrefix)probe-\(getpid())"
        guard Shell.run(["ip", "netns", "add", scratch]).status == 0 else { return false }
        defer { _ = Shell.run(["ip", "netns", "del", scratch]) }
        return Shell.run(["tc", "-n", scratch, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]).status == 0
    }
}

/// Ctrl-C during `up`: the handler removes what was created; the loop notices and stops.
enum Interrupts {
    nonisolated(unsafe) static var received = false
    nonisolated(unsafe) private static var cleanup: (() -> Void)?
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func onInterrupt(_ body: @escaping () -> Void) {
        cleanup = body
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                received = true
                cleanup?()
                exit(130)
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// A namespace other than the first may only pick congestion controls the host allows
/// (net.ipv4.tcp_allowed_congestion_control, a host-wide list): widen it when a topology asks.
enum CongestionControls {
    static let allowedPath = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
    static let availablePath = "/proc/sys/net/ipv4/tcp_available_congestion_control"

    static func words(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    static func allow(_ topology: Topology, file: String) throws {
        let available = words(availablePath)
        var allowed = words(allowedPath)
        for host in topology.hosts {
            guard let cc = host.congestionControl else { continue }
            guard available.contains(cc) else {
                throw ValidationError("\(file): line \(host.line): congestion control '\(cc)' is not available in this kernel (available: \(available.joined(separator: " ")))")
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
            throw ValidationError("cannot allow congestion controls \(allowed) in \(allowedPath): \(error)")
        }
    }
}
