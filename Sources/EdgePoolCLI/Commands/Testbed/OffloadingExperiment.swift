import ArgumentParser
import CalcApp
import Foundation
import RSerPool
import Testbed

/// Where the processes of an offloading run live in a testbed: each PE group on its site's
/// host, the device's registrar and the users on the device, the edge registrar with the
/// nearest edge site and the remote one with the first far site.
struct OffloadingPlacement {
    enum Site: Hashable {
        case device, edge, remote
        case group(String)
    }

    let topology: SiteStarTopology
    let plan: TopologyPlan
    let groups: [(name: String, delay: Double)]
    let executable: String
    let ipTool: String

    func host(_ site: Site) -> String {
        switch site {
        case .device: return SiteStarTopology.deviceHost
        case .edge: return groups.first { $0.delay > 0 && $0.delay < 0.010 }.map { topology.host(of: $0.name) } ?? SiteStarTopology.deviceHost
        case .remote: return groups.first { $0.delay >= 0.010 }.map { topology.host(of: $0.name) } ?? host(.edge)
        case .group(let name): return topology.host(of: name)
        }
    }

    func namespace(_ site: Site) -> String { plan.namespace(host(site)) }
    func address(_ site: Site) -> String { topology.address(of: host(site)) }
}

extension TestbedExperiment {
    /// `edgepool testbed experiment offloading`: the offloading scenario with each site in a
    /// namespace of its own and the network delays applied by the testbed's links (the link
    /// emulator here) instead of the PEs' delaying relays.
    struct Offloading: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "offloading",
            abstract: "The CalcApp offloading scenario over emulated links: a namespace per site, delays on the links.",
            discussion: """
            The device (UE) is a namespace with one link per remote site (edge, each cloud),
            each link with the site's one-way delay ÷ the time scale. Registrars: on the device,
            at the edge, at the first cloud site (ENRP between them over the links); every PE
            in its site's namespace registered with its nearest registrar; the users on the
            device. The report has the files of `edgepool offload` and `edgepool simulate`, so
            the three compare directly.

            Example: edgepool testbed experiment offloading --users 1 8 32 --duration 120s --repetitions 1 --out /tmp/offload-testbed
            """)

        @Option(help: ArgumentHelp("A scenario file (JSON); default: the built-in device/edge/cloud scenario.", valueName: "file"))
        var scenario: String?
        @Option(parsing: .upToNextOption, help: "Numbers of pool users to sweep (overrides the scenario).") var users: [Int] = []
        @Option(help: "Scenario duration of each run (overrides the scenario).") var duration: Duration?
        @Option(help: "Repetitions per point (overrides the scenario).") var repetitions: Int?
        @Option(help: "Run this many times faster than real time (link delays ÷ k too).") var timeScale: Double = 10
        @Option(help: "Transport: mptcp (falls back to tcp) or tcp.") var transport: TransportProtocol = .mptcp
        @Option(help: ArgumentHelp("Directory for the report.", valueName: "directory")) var out = "offloading-testbed"

        func run() async throws {
            try requireRoot()
            let chosen = try loadScenario(scenario, users: users, duration: duration, repetitions: repetitions)
            guard timeScale >= 1, timeScale <= 100 else { throw ValidationError("--time-scale must be 1…100") }
            let groups = chosen.elements.map { (name: $0.name, delay: $0.delay.seconds) }
            let star = try SiteStarTopology(name: "offload", sites: groups.map { .init(name: $0.name, oneWayDelaySeconds: $0.delay / timeScale) })
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let file = directory.appendingPathComponent("offload.topo").path
            try star.text.write(toFile: file, atomically: true, encoding: .utf8)
            let topology = try loadTopology(file)
            let plan = try bringUp(topology, file: file)
            defer { Teardown.remove(topology: topology.name) }
            let placement = OffloadingPlacement(topology: star, plan: plan, groups: groups, executable: Netem.emulatorCommand[0],
                                                ipTool: Shell.ipTool ?? "/usr/sbin/ip")
            print("sites: " + groups.map { "\($0.name) on \(star.host(of: $0.name)) (\(star.address(of: star.host(of: $0.name))))" }.joined(separator: ", "))
            let points = try await OffloadCommand.sweep(chosen) { count, seed in
                if Interrupts.received { throw ValidationError("interrupted") }
                var run = OffloadingProcessRun(scenario: chosen, users: count, timeScale: timeScale, seed: seed, transport: transport)
                run.placement = placement
                return try await run.run()
            }
            let report = OffloadingReport(scenario: chosen, points: points,
                                          method: "live in a testbed (a namespace per site, link delays by \(Netem.available() ? "netem" : "EdgePool's link emulator"); a process per registrar, PE and the users, \(transport.rawValue)), time scale \(formatNumber(timeScale))× (capacities × k, inter-arrival times and delays ÷ k; results in scenario time)")
            try report.write(to: directory)
            print(report.markdown())
            print("Wrote \(directory.path)/{runs.csv,summary.csv,summary.md,utilization.svg,times.svg,speed.svg,scenario.json,offload.topo}")
        }
    }
}
