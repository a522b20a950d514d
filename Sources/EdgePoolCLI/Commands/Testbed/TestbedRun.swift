import ArgumentParser
import Foundation
import ProcessSupport
import Testbed

/// `edgepool testbed run SCENARIO`: brings the scenario's topology up, starts its traffic,
/// plays its timeline of link events while recording every listed interface, takes the
/// topology down again (also on failure or Ctrl-C), and writes the report.
struct TestbedRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a scenario: traffic, link events, per-interface recording, report with plots.",
        discussion: """
          edgepool testbed run Scenarios/isp-failover.scenario --out results/
        A scenario file names its topology, duration, the interfaces to record, traffic,
        user commands and link events, one per line:
          traffic bulk|requests|video SENDER -> RECEIVER:SENDER-ADDRESS [mptcp|tcp|gateway] [key=value…]
            requests: size=1000 every=100ms   video: bitrate=2mbit buffer=64MiB preroll=2s
          command HOST [at 10s] -- PROGRAM ARGUMENTS…
          at 25s down|up|blackhole|restore|rate=5mbit HOST:IF
        Writes interfaces.csv (in/out bit/s per recorded interface, bwm-ng style),
        flows.csv (bytes received over time per flow), requests.csv (latency per
        request), command-N.log, summary.md (per phase rates; per flow bytes
        sent/received/lost, stalls and recovery after each event, request latencies,
        video frames lost and the viewer's interruptions) and rates.svg / rates.png
        (gnuplot, with the phase boundaries marked). --phase-seconds scales the timeline.
        """)

    @Argument(help: "Scenario file.") var file: String
    @Option(help: "Directory for the report.") var out = "testbed-results"
    @Option(help: "Stretch or shrink the timeline so that each phase (the time between events) takes this long.") var phaseSeconds: Double?

    func run() throws {
        try requireRoot()
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read '\(file)'") }
        var scenario: Scenario
        do { scenario = try ScenarioParser.parse(text) } catch { throw ValidationError("\(file): \(error)") }
        if let phaseSeconds { scenario = Self.rescaled(scenario, phaseSeconds: phaseSeconds) }
        let topologyPath = URL(fileURLWithPath: scenario.topologyPath, relativeTo: URL(fileURLWithPath: file).deletingLastPathComponent()).path
        let topology = try loadTopology(topologyPath)
        do { try ScenarioParser.check(scenario, against: topology) } catch { throw ValidationError("\(file): \(error)") }
        let directory = URL(fileURLWithPath: out).appendingPathComponent("\(scenario.name)-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        let result = try Self.execute(scenario, on: topology, file: topologyPath, directory: directory)
        print("report: \(directory.path)")
        print(result.summary)
        if let reason = result.incomplete { throw ValidationError("the scenario did not finish (\(reason)); partial results kept in \(directory.path)") }
    }

    /// Brings the topology up, plays the scenario on it, takes it down again whatever happened,
    /// and writes the report (marked incomplete when the play failed).
    static func execute(_ scenario: Scenario, on topology: Topology, file: String, directory: URL) throws -> ScenarioResult {
        let plan = try bringUp(topology, file: file)
        var result = ScenarioResult(scenario: scenario)
        do {
            try play(scenario, plan: plan, directory: directory, into: &result)
        } catch {
            result.incomplete = "\(error)"
        }
        Teardown.remove(topology: topology.name)
        try result.write(to: directory)
        return result
    }

    static func rescaled(_ scenario: Scenario, phaseSeconds: Double) -> Scenario {
        let boundaries = scenario.phaseBoundaries
        let phases = max(boundaries.count - 1, 1)
        let factor = phaseSeconds * Double(phases) / scenario.durationSeconds
        var scaled = scenario
        scaled.durationSeconds *= factor
        scaled.events = scenario.events.map { var event = $0; event.atSeconds *= factor; return event }
        scaled.commands = scenario.commands.map { var command = $0; command.atSeconds *= factor; return command }
        scaled.intervalSeconds = max(0.05, min(scenario.intervalSeconds, phaseSeconds / 20))
        return scaled
    }

    /// Plays a scenario on a testbed that is up: traffic, commands, events, recording. Command
    /// output goes to `directory` (command-N.log).
    static func play(_ scenario: Scenario, plan: TopologyPlan, directory: URL, into result: inout ScenarioResult) throws {
        let me = Netem.emulatorCommand[0]
        var helpers: [ChildProcess] = []
        var commands: [(command: Scenario.Command, process: Process, log: String)] = []
        defer {
            for helper in helpers { helper.signal(SIGTERM) }
            for (_, process, _) in commands where process.isRunning { process.terminate() }
        }
        // Senders (and gateways) first; they listen.
        var connects: [String] = []
        for (index, traffic) in scenario.traffic.enumerated() {
            let port = 5201 + index
            let any = traffic.address.contains(":") ? "::" : "0.0.0.0"
            var arguments: [String]
            switch traffic.kind {
            case .bulk: arguments = ["serve"]
            case .requests: arguments = ["respond"]
            case .video(let bits, _, _): arguments = ["stream", "--seconds", "\(scenario.durationSeconds)", "--bitrate", "\(bits)"]
            }
            arguments += ["--port", "\(port)", "--listen", any] + (traffic.mptcp ? ["--mptcp"] : [])
            let sender = try ChildProcess("sender \(index)", ["netns", "exec", plan.namespace(traffic.sender), me, "testbed", "traffic"] + arguments,
                                          executable: Shell.ipTool ?? "/usr/sbin/ip", standardError: .merged)
            helpers.append(sender)
            _ = try sender.waitForReadyBlocking(timeout: 10)
            var connect = TestbedTraffic.joinHostPort(traffic.address, port)
            if traffic.throughGateway {
                // receiver →TCP→ entry (receiver's host) →MPTCP→ exit (sender's host) →TCP→ sender.
                // The exit listens on every address: the MP_JOIN to an announced second
                // address must find a listener too.
                let secret = "testbed pair secret \(UInt64.random(in: 0...UInt64.max))"
                let exitPort = 7000 + index, entryPort = 6200 + index
                let exit = try ChildProcess("exit \(index)", ["netns", "exec", plan.namespace(traffic.sender), me, "gateway", "exit",
                                                              "--listen", TestbedTraffic.joinHostPort(any, exitPort), "--allow", "127.0.0.1/32",
                                                              "--secret", secret, "--log-level", "warning"], executable: Shell.ipTool ?? "/usr/sbin/ip", standardError: .merged)
                helpers.append(exit)
                _ = try exit.waitForReadyBlocking(timeout: 10)
                let entry = try ChildProcess("entry \(index)", ["netns", "exec", plan.namespace(traffic.receiver), me, "gateway", "entry",
                                                                "--listen", "127.0.0.1:\(entryPort)", "--exit", TestbedTraffic.joinHostPort(traffic.address, exitPort),
                                                                "--forward", "127.0.0.1:\(port)", "--secret", secret, "--log-level", "warning"],
                                             executable: Shell.ipTool ?? "/usr/sbin/ip", standardError: .merged)
                helpers.append(entry)
                _ = try entry.waitForReadyBlocking(timeout: 10)
                connect = "127.0.0.1:\(entryPort)"
            }
            connects.append(connect)
        }
        // Time zero: the receivers report against the runner's clock (--epoch), so flow
        // progress and link events share one time axis.
        let start = Date()
        var receivers: [ChildProcess] = []
        for (index, traffic) in scenario.traffic.enumerated() {
            var arguments = ["--connect", connects[index], "--seconds", "\(scenario.durationSeconds)", "--epoch", "\(start.timeIntervalSince1970)"]
            switch traffic.kind {
            case .bulk:
                arguments = ["fetch", "--every", "\(min(scenario.intervalSeconds / 2, 0.05))"] + arguments
            case .requests(let size, let interval):
                arguments = ["request", "--size", "\(size)", "--every", "\(interval)"] + arguments
            case .video(_, let buffer, let preroll):
                arguments = ["watch", "--buffer", "\(buffer)", "--preroll", "\(preroll)"] + arguments
            }
            let receiver = try ChildProcess("receiver \(index)", ["netns", "exec", plan.namespace(traffic.receiver), me, "testbed", "traffic"] + arguments
                                            + (traffic.mptcp ? ["--mptcp"] : []), executable: Shell.ipTool ?? "/usr/sbin/ip", standardError: .merged)
            helpers.append(receiver)
            receivers.append(receiver)
        }
        // Timeline and recording.
        var recording = InterfaceRecording(interfaces: scenario.recorded.map(\.description))
        var pending = scenario.events
        var pendingCommands = scenario.commands.sorted { $0.atSeconds < $1.atSeconds }
        var nextSample = 0.0
        while true {
            let now = Date().timeIntervalSince(start)
            while let event = pending.first, event.atSeconds <= now {
                pending.removeFirst()
                try apply(event, plan: plan)
                result.applied.append((now, event))
            }
            while let command = pendingCommands.first, command.atSeconds <= now {
                pendingCommands.removeFirst()
                let log = "command-\(commands.count + 1).log"
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Shell.ipTool ?? "/usr/sbin/ip")
                process.arguments = ["netns", "exec", plan.namespace(command.host)] + command.arguments
                let path = directory.appendingPathComponent(log).path
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                let handle = FileHandle(forWritingAtPath: path)
                process.standardOutput = handle
                process.standardError = handle
                process.standardInput = FileHandle.nullDevice
                do {
                    try process.run()
                    result.commands.append(ScenarioResult.CommandRun(command: command, startedAt: now, log: log))
                    commands.append((command, process, log))
                } catch {
                    result.commands.append(ScenarioResult.CommandRun(command: command, startedAt: now, log: log, outcome: "could not start: \(error)"))
                }
            }
            if now >= nextSample {
                recording.append(InterfaceRecording.Sample(seconds: now, counters: counters(scenario.recorded, plan: plan)))
                nextSample += scenario.intervalSeconds
            }
            if now >= scenario.durationSeconds + 1 || Interrupts.received { break }
            // Wake for the next sample, event or command, whichever comes first.
            let wake = min(nextSample, pending.first?.atSeconds ?? .infinity, pendingCommands.first?.atSeconds ?? .infinity)
            let sleep = wake - Date().timeIntervalSince(start)
            if sleep > 0 { usleep(useconds_t(min(sleep, scenario.intervalSeconds) * 1e6)) }
        }
        if Interrupts.received { throw ValidationError("interrupted") }
        result.recording = recording
        // Commands still running at the end are stopped.
        for (index, entry) in commands.enumerated() {
            let position = result.commands.firstIndex { $0.log == entry.log } ?? index
            var stopped = false
            if entry.process.isRunning {
                entry.process.terminate()
                stopped = true
                let deadline = Date().addingTimeInterval(2)
                while entry.process.isRunning && Date() < deadline { usleep(20_000) }
                if entry.process.isRunning { kill(entry.process.processIdentifier, SIGKILL) }
            }
            entry.process.waitUntilExit()
            result.commands[position].outcome = stopped ? "still running at the end: terminated" : "exit status \(entry.process.terminationStatus)"
        }
        for (index, traffic) in scenario.traffic.enumerated() {
            let receiver = receivers[index], sender = helpers.first { $0.name == "sender \(index)" }
            // A receiver gives up by itself 30 s after the run; one that hangs beyond that is
            // killed and its flow reported as it stands.
            var hung = false
            do { try receiver.waitForExitBlocking(timeout: TestbedTraffic.Fetch.grace + 10) } catch {
                receiver.signal(SIGKILL)
                hung = true
            }
            // The sender prints its totals once the receiver has gone.
            let deadline = Date().addingTimeInterval(3)
            while let sender, !sender.lines.contains(where: { $0.hasPrefix("sent ") || $0.hasPrefix("answered ") }), Date() < deadline { usleep(20_000) }
            let how = traffic.throughGateway ? "TCP via EdgePool's gateway pair (MPTCP between)" : traffic.mptcp ? "MPTCP" : "TCP"
            var flow = ScenarioResult.Flow(name: "flow \(index): \(traffic.kind.name) \(traffic.sender) → \(traffic.receiver) (\(how))",
                                           kind: traffic.kind, receiverLines: receiver.lines, senderLines: sender?.lines ?? [])
            if hung {
                flow.stoppedEarly = true
                flow.error = "the receiver hung \(Int(TestbedTraffic.Fetch.grace + 10)) s after the run and was killed"
                if flow.received == 0 { flow.received = flow.progress.last?.1 ?? 0 }
            }
            result.flows.append(flow)
        }
    }

    private static func apply(_ event: Scenario.Event, plan: TopologyPlan) throws {
        let ns = plan.namespace(event.endpoint.host)
        let arguments: [String]
        switch event.action {
        case .blackhole, .restore:
            // The link's emulator drops everything (SIGUSR1) or stops dropping (SIGUSR2).
            guard let index = plan.topology.links.firstIndex(where: {
                ($0.a.host == event.endpoint.host && $0.a.name == event.endpoint.interface) || ($0.b.host == event.endpoint.host && $0.b.name == event.endpoint.interface)
            }), plan.namespaces.contains(plan.emulatorNamespace(index)) else {
                throw ValidationError("line \(event.line): blackhole needs an emulated link (give \(event.endpoint)'s link a delay, jitter or loss)")
            }
            let pids = Shell.run(["ip", "netns", "pids", plan.emulatorNamespace(index)]).output.split(separator: "\n").compactMap { Int32($0) }
            guard !pids.isEmpty else { throw ValidationError("the emulator of \(event.endpoint)'s link is not running") }
            for pid in pids { kill(pid, event.action == .blackhole ? SIGUSR1 : SIGUSR2) }
            return
        case .down: arguments = ["ip", "-n", ns, "link", "set", "dev", event.endpoint.interface, "down"]
        case .up: arguments = ["ip", "-n", ns, "link", "set", "dev", event.endpoint.interface, "up"]
        case .rate(let rate):
            let burst = max(Int(rate / 8 / 1000), 3028)
            arguments = ["tc", "-n", ns, "qdisc", "replace", "dev", event.endpoint.interface, "root", "tbf", "rate", "\(rate)bit",
                         "burst", "\(burst)", "limit", "\(max(10, Int(Double(rate) * 0.1 / 8)))"]
        }
        let result = Shell.run(arguments)
        guard result.status == 0 else { throw ValidationError("event at \(event.atSeconds) s failed: \(arguments.joined(separator: " ")): \(result.errors)") }
        if case .up = event.action {
            // A link going down takes its routes with it; put the host's routes back.
            for step in plan.up {
                // ip [-6] -n NS route|rule …
                guard let flag = step.arguments.firstIndex(of: "-n"), flag + 2 < step.arguments.count, step.arguments[flag + 1] == ns,
                      ["route", "rule"].contains(step.arguments[flag + 2]) else { continue }
                _ = Shell.run(step.arguments)   // "File exists" for the ones that survived
            }
        }
    }

    /// rx/tx bytes of each recorded interface (`ip -s -j link`).
    private static func counters(_ endpoints: [Scenario.Endpoint], plan: TopologyPlan) -> [String: (rx: UInt64, tx: UInt64)] {
        var counters: [String: (rx: UInt64, tx: UInt64)] = [:]
        for (host, group) in Dictionary(grouping: endpoints, by: \.host) {
            let output = Shell.run(["ip", "-n", plan.namespace(host), "-s", "-j", "link", "show"]).output
            guard let list = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else { continue }
            for entry in list {
                guard let name = entry["ifname"] as? String, group.contains(where: { $0.interface == name }),
                      let stats = entry["stats64"] as? [String: Any], let rx = stats["rx"] as? [String: Any], let tx = stats["tx"] as? [String: Any],
                      let rxBytes = (rx["bytes"] as? NSNumber)?.uint64Value, let txBytes = (tx["bytes"] as? NSNumber)?.uint64Value else { continue }
                counters["\(host):\(name)"] = (rxBytes, txBytes)
            }
        }
        return counters
    }
}
