import ArgumentParser
import Foundation
import Testbed
import TestbedRunner

struct TestbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testbed",
        abstract: "Multi-homing testbeds in network namespaces: bring a topology up and down, run commands in its hosts.",
        discussion: HelpText.reflow("""
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
        """),
        subcommands: [TestbedUp.self, TestbedDown.self, TestbedExec.self, TestbedPlan.self, TestbedList.self, TestbedRun.self, TestbedExperiment.self, TestbedTrafficCommand.self, TestbedEmulate.self]
    )
}

struct TestbedPlan: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print the commands `up` would run, without running them.")
    @Argument(help: "Topology file.") var file: String
    @Flag(help: "Plan as if the kernel had tc netem.") var netem = false

    func run() throws {
        let topology = try asValidation { try TestbedHost.loadTopology(file) }
        do {
            let plan = try TopologyPlan(topology, capabilities: .init(netem: netem || Netem.available(), emulator: Netem.emulatorCommand, pathManager: Netem.pathManagerCommand))
            for step in plan.up { print(step.description + (step.mayFail ? "    # may fail" : "")) }
        } catch {
            throw ValidationError("\(file): \(error)")
        }
    }
}

struct TestbedUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Create a topology's namespaces, links, shaping, routes and MPTCP settings.",
        discussion: HelpText.reflow("On any failure, or Ctrl-C, whatever was created is removed again."))
    @Argument(help: "Topology file.") var file: String

    func run() throws {
        try asValidation { try TestbedHost.requireRoot() }
        let topology = try asValidation { try TestbedHost.loadTopology(file) }
        let plan = try asValidation { try TestbedHost.bringUp(topology, file: file) }
        plan.summary(of: topology).forEach { print($0) }
    }
}

struct TestbedDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Remove a testbed: its processes, namespaces and links (also after a crash).")
    @Argument(help: "Topology name or file.") var topology: String?
    @Flag(help: "Remove every testbed (every ept-* namespace).") var all = false

    func run() throws {
        try asValidation { try TestbedHost.requireRoot() }
        if all {
            let removed = Teardown.remove(prefix: TopologyPlan.namespacePrefix)
            print("removed \(removed) namespace(s)")
            return
        }
        guard let topology else { throw ValidationError("name a topology (or a topology file), or give --all") }
        let name = topology.hasSuffix(".topo") || topology.contains("/") ? try asValidation { try TestbedHost.loadTopology(topology).name } : topology
        let removed = Teardown.remove(topology: name)
        print(removed == 0 ? "testbed \(name) was not up" : "testbed \(name) is down (\(removed) namespace(s) removed)")
    }
}

struct TestbedExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a command inside a testbed host.",
        discussion: HelpText.reflow("  edgepool testbed exec two-isp server -- iperf3 -s"))
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

