import ArgumentParser
import Foundation
import Testbed

/// `edgepool testbed run SCENARIO`: brings the scenario's topology up, starts its traffic,
/// plays its timeline of link events while recording every listed interface, takes the
/// topology down again (also on failure or Ctrl-C), and writes the report.
struct TestbedRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a scenario: traffic, link events, per-interface recording, report with plots.",
        discussion: """
          edgepool testbed run Scenarios/isp-failover.scenario --out results/
        Writes interfaces.csv (in/out bit/s per recorded interface, bwm-ng style),
        flows.csv (bytes received over time per flow), summary.md (per phase rates,
        the longest stall around each event, bytes sent/received/lost per flow) and
        rates.svg / rates.png (gnuplot, with the phase boundaries marked). --phase-
        seconds scales the timeline.
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

        let plan = try bringUp(topology, file: topologyPath)
        var result = ScenarioResult(scenario: scenario)
        do {
            try Self.play(scenario, plan: plan, into: &result)
        } catch {
            result.incomplete = "\(error)"
        }
        Teardown.remove(topology: topology.name)
        try result.write(to: directory)
        print("report: \(directory.path)")
        print(result.summary)
        if let reason = result.incomplete { throw ValidationError("the scenario did not finish (\(reason)); partial results kept in \(directory.path)") }
    }

    static func rescaled(_ scenario: Scenario, phaseSeconds: Double) -> Scenario {
        let boundaries = scenario.phaseBoundaries
        let phases = max(boundaries.count - 1, 1)
        let factor = phaseSeconds * Double(phases) / scenario.durationSeconds
        var scaled = scenario
        scaled.durationSeconds *= factor
        scaled.events = scenario.events.map { var event = $0; event.atSeconds *= factor; return event }
        scaled.intervalSeconds = max(0.05, min(scenario.intervalSeconds, phaseSeconds / 20))
        return scaled
    }

    /// Plays a scenario on a testbed that is up: traffic, events, recording.
    static func play(_ scenario: Scenario, plan: TopologyPlan, into result: inout ScenarioResult) throws {
        let me = Netem.emulatorCommand[0]
        // Traffic: a sender per flow, then its receiver.
        var flows: [(traffic: Scenario.Traffic, sender: ChildProcess, receiver: ChildProcess)] = []
        var gateways: [ChildProcess] = []
        for (index, traffic) in scenario.traffic.enumerated() {
            let port = 5201 + index
            let sender = try ChildProcess("sender \(index)", ["netns", "exec", plan.namespace(traffic.sender), me, "testbed", "traffic", "serve",
                                                              "--port", "\(port)"] + (traffic.mptcp ? ["--mptcp"] : []),
                                          executable: Shell.ipTool, captureErrors: true)
            _ = try sender.waitForLineBlocking(containing: "serving on port")
            var connect = "\(traffic.address):\(port)"
            if traffic.throughGateway {
                // receiver →TCP→ entry (receiver's host) →MPTCP→ exit (sender's host) →TCP→ sender.
                // The exit listens on every address: the MP_JOIN to an announced second
                // address must find a listener too.
                let secret = "testbed pair secret \(UInt64.random(in: 0...UInt64.max))"
                let exitPort = 7000 + index, entryPort = 6200 + index
                let exit = try ChildProcess("exit \(index)", ["netns", "exec", plan.namespace(traffic.sender), me, "gateway", "exit",
                                                              "--listen", "0.0.0.0:\(exitPort)", "--allow", "127.0.0.1/32", "--secret", secret,
                                                              "--log-level", "warning"], executable: Shell.ipTool, captureErrors: true)
                _ = try exit.waitForLineBlocking(containing: "listening on")
                let entry = try ChildProcess("entry \(index)", ["netns", "exec", plan.namespace(traffic.receiver), me, "gateway", "entry",
                                                                "--listen", "127.0.0.1:\(entryPort)", "--exit", "\(traffic.address):\(exitPort)",
                                                                "--forward", "127.0.0.1:\(port)", "--secret", secret, "--log-level", "warning"],
                                             executable: Shell.ipTool, captureErrors: true)
                _ = try entry.waitForLineBlocking(containing: "listening on")
                gateways += [exit, entry]
                connect = "127.0.0.1:\(entryPort)"
            }
            let receiver = try ChildProcess("receiver \(index)", ["netns", "exec", plan.namespace(traffic.receiver), me, "testbed", "traffic", "fetch",
                                                                  "--connect", connect, "--seconds", "\(scenario.durationSeconds)",
                                                                  "--every", "\(min(scenario.intervalSeconds / 2, 0.05))"] + (traffic.mptcp ? ["--mptcp"] : []),
                                            executable: Shell.ipTool, captureErrors: true)
            flows.append((traffic, sender, receiver))
        }
        defer { for gateway in gateways { gateway.signal(SIGTERM) } }
        // Timeline and recording.
        var recording = InterfaceRecording(interfaces: scenario.recorded.map(\.description))
        var pending = scenario.events
        let start = Date()
        while true {
            let now = Date().timeIntervalSince(start)
            while let event = pending.first, event.atSeconds <= now {
                pending.removeFirst()
                try apply(event, plan: plan)
                result.applied.append((now, event))
            }
            recording.append(InterfaceRecording.Sample(seconds: now, counters: counters(scenario.recorded, plan: plan)))
            if now >= scenario.durationSeconds + 1 || Interrupts.received { break }
            usleep(useconds_t(scenario.intervalSeconds * 1e6))
        }
        if Interrupts.received { throw ValidationError("interrupted") }
        result.recording = recording
        for (index, flow) in flows.enumerated() {
            try flow.receiver.waitForEndBlocking(timeout: TestbedTraffic.Fetch.grace + 10)
            flow.sender.signal(SIGTERM)
            let progress = flow.receiver.lines.compactMap { line -> (Double, UInt64)? in
                let words = line.split(separator: " ")
                guard words.count == 3, words[0] == "progress", let t = Double(words[1]), let b = UInt64(words[2]) else { return nil }
                return (t, b)
            }
            let summary = flow.receiver.lines.last { $0.hasPrefix("received ") } ?? ""
            let numbers = summary.split(separator: " ").compactMap { UInt64($0.trimmingCharacters(in: .punctuationCharacters)) }
            usleep(200_000)
            let sent = flow.sender.lines.last { $0.hasPrefix("sent ") }.flatMap { UInt64($0.split(separator: " ")[1]) }
            let how = flow.traffic.throughGateway ? "TCP via EdgePool's gateway pair (MPTCP between)" : flow.traffic.mptcp ? "MPTCP" : "TCP"
            result.flows.append(ScenarioResult.Flow(name: "flow \(index): \(flow.traffic.sender) → \(flow.traffic.receiver) (\(how))",
                                                    progress: progress, received: numbers.first ?? 0, mismatched: numbers.count > 1 ? numbers[1] : 0,
                                                    sent: sent, stoppedEarly: flow.receiver.lines.contains { $0.hasPrefix("stopped:") }))
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
            for step in plan.up where step.arguments.count > 3 && step.arguments[2] == ns && (step.arguments[3] == "route" || step.arguments[3] == "rule") {
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

extension ChildProcess {
    func waitForLineBlocking(containing text: String, timeout: Double = 10) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            usleep(20_000)
        }
        throw ValidationError("\(name) did not say '\(text)': \(lines.suffix(3))")
    }

    func waitForEndBlocking(timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else { throw ValidationError("\(name) did not finish") }
            usleep(20_000)
        }
        usleep(100_000)
    }
}
