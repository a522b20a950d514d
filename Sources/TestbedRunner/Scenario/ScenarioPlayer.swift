import PathManager
import Foundation
import ProcessSupport
import Testbed

/// Plays scenarios on testbeds (`edgepool testbed run SCENARIO`): brings the scenario's
/// topology up, starts its traffic, plays its timeline of link events and user commands while
/// recording every listed interface, collects what each flow saw, takes the topology down
/// again (also on failure or Ctrl-C), and writes the report.
public enum ScenarioPlayer {
    /// Reads a scenario file and its topology, runs it, prints the report's summary and
    /// returns the result. `phaseSeconds` stretches the timeline (see ``rescaled(_:phaseSeconds:)``).
    /// - Throws: ``TestbedError`` for a bad file, a failed bring-up, or a run that did not
    ///   finish (the partial report is kept and named).
    @discardableResult
    public static func run(file: String, out: String, phaseSeconds: Double? = nil) throws -> ScenarioResult {
        try TestbedHost.requireRoot()
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw TestbedError("cannot read '\(file)'") }
        var scenario: Scenario
        do { scenario = try ScenarioParser.parse(text) } catch { throw TestbedError("\(file): \(error)") }
        if let phaseSeconds { scenario = rescaled(scenario, phaseSeconds: phaseSeconds) }
        let topologyPath = URL(fileURLWithPath: scenario.topologyPath, relativeTo: URL(fileURLWithPath: file).deletingLastPathComponent()).path
        let topology = try TestbedHost.loadTopology(topologyPath)
        do { try ScenarioParser.check(scenario, against: topology) } catch { throw TestbedError("\(file): \(error)") }
        let directory = URL(fileURLWithPath: out).appendingPathComponent("\(scenario.name)-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        let result = try execute(scenario, on: topology, file: topologyPath, directory: directory)
        print("report: \(directory.path)")
        print(result.summary)
        if let reason = result.incomplete { throw TestbedError("the scenario did not finish (\(reason)); partial results kept in \(directory.path)") }
        return result
    }

    /// Brings the topology up, plays the scenario on it, takes it down again whatever happened,
    /// and writes the report (marked incomplete when the play failed).
    public static func execute(_ scenario: Scenario, on topology: Topology, file: String, directory: URL) throws -> ScenarioResult {
        let plan = try TestbedHost.bringUp(topology, file: file)
        var result = ScenarioResult(scenario: scenario)
        do {
            try play(scenario, plan: plan, directory: directory, into: &result)
        } catch {
            result.incomplete = "\(error)"
        }
        // The path managers' logs (path states, endpoints restored) go into the report.
        for host in topology.hosts where host.pathManager == .edgepool {
            let log = "/tmp/\(plan.namespace(host.name)).log"
            try? FileManager.default.copyItem(atPath: log, toPath: directory.appendingPathComponent("paths-\(host.name).log").path)
        }
        Teardown.remove(topology: topology.name)
        try ScenarioReport.write(result, to: directory)
        return result
    }

    /// The scenario with its timeline stretched or shrunk so that each phase (the time between
    /// events) takes `phaseSeconds`.
    public static func rescaled(_ scenario: Scenario, phaseSeconds: Double) -> Scenario {
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
    public static func play(_ scenario: Scenario, plan: TopologyPlan, directory: URL, into result: inout ScenarioResult) throws {
        let session = PlaySession()
        defer { session.stopAll() }
        let connects = try startSenders(scenario, plan: plan, session: session)
        // Time zero: the receivers report against the runner's clock (--epoch), so flow
        // progress and link events share one time axis.
        let start = Date()
        try startReceivers(scenario, plan: plan, connects: connects, start: start, session: session)
        try playTimeline(scenario, plan: plan, directory: directory, start: start, session: session, into: &result)
        collectFlows(scenario, session: session, into: &result)
    }

    /// The processes of one play: traffic senders, gateways and receivers, user commands.
    final class PlaySession {
        var helpers: [ChildProcess] = []
        var receivers: [ChildProcess] = []
        var commands: [(command: Scenario.Command, process: Process, log: String)] = []

        func stopAll() {
            for helper in helpers { helper.signal(SIGTERM) }
            for (_, process, _) in commands where process.isRunning { process.terminate() }
        }
    }

    /// Starts every flow's sender (and, for flows through the gateway, the exit and entry
    /// gateways) and waits until each listens; returns where each flow's receiver connects.
    private static func startSenders(_ scenario: Scenario, plan: TopologyPlan, session: PlaySession) throws -> [String] {
        let me = ChildProcess.currentExecutable
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
            session.helpers.append(sender)
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
                session.helpers.append(exit)
                _ = try exit.waitForReadyBlocking(timeout: 10)
                let entry = try ChildProcess("entry \(index)", ["netns", "exec", plan.namespace(traffic.receiver), me, "gateway", "entry",
                                                                "--listen", "127.0.0.1:\(entryPort)", "--exit", TestbedTraffic.joinHostPort(traffic.address, exitPort),
                                                                "--forward", "127.0.0.1:\(port)", "--secret", secret, "--log-level", "warning"],
                                             executable: Shell.ipTool ?? "/usr/sbin/ip", standardError: .merged)
                session.helpers.append(entry)
                _ = try entry.waitForReadyBlocking(timeout: 10)
                connect = "127.0.0.1:\(entryPort)"
            }
            connects.append(connect)
        }
        return connects
    }

    /// Starts every flow's receiver; they connect at once and report on the runner's clock.
    private static func startReceivers(_ scenario: Scenario, plan: TopologyPlan, connects: [String], start: Date, session: PlaySession) throws {
        let me = ChildProcess.currentExecutable
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
            session.helpers.append(receiver)
            session.receivers.append(receiver)
        }
    }

    /// Applies the events and starts the user commands at their times while sampling the
    /// recorded interfaces, until the scenario's end; then stops commands still running.
    private static func playTimeline(_ scenario: Scenario, plan: TopologyPlan, directory: URL, start: Date, session: PlaySession,
                                     into result: inout ScenarioResult) throws {
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
                let log = "command-\(session.commands.count + 1).log"
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
                    session.commands.append((command, process, log))
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
        if Interrupts.received { throw TestbedError("interrupted") }
        result.recording = recording
        // Commands still running at the end are stopped.
        for (index, entry) in session.commands.enumerated() {
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
    }

    /// Waits for each receiver's end and reads each flow's outcome from its receiver's and
    /// sender's lines.
    private static func collectFlows(_ scenario: Scenario, session: PlaySession, into result: inout ScenarioResult) {
        for (index, traffic) in scenario.traffic.enumerated() {
            let receiver = session.receivers[index], sender = session.helpers.first { $0.name == "sender \(index)" }
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
                throw TestbedError("line \(event.line): blackhole needs an emulated link (give \(event.endpoint)'s link a delay, jitter or loss)")
            }
            let pids = Shell.run(["ip", "netns", "pids", plan.emulatorNamespace(index)]).output.split(separator: "\n").compactMap { Int32($0) }
            guard !pids.isEmpty else { throw TestbedError("the emulator of \(event.endpoint)'s link is not running") }
            for pid in pids { kill(pid, event.action == .blackhole ? SIGUSR1 : SIGUSR2) }
            return
        case .down: arguments = ["ip", "-n", ns, "link", "set", "dev", event.endpoint.interface, "down"]
        case .up: arguments = ["ip", "-n", ns, "link", "set", "dev", event.endpoint.interface, "up"]
        case .rate(let rate):
            arguments = ["tc", "-n", ns, "qdisc", "replace", "dev", event.endpoint.interface, "root"] + TokenBucketShaping(bitsPerSecond: rate).tbfParameters
        }
        let result = Shell.run(arguments)
        guard result.status == 0 else { throw TestbedError("event at \(event.atSeconds) s failed: \(arguments.joined(separator: " ")): \(result.errors)") }
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
