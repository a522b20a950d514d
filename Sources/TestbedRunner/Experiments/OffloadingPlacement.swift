import CalcApp
import CalcAppService
import Foundation
import ProcessSupport
import RSerPool
import Testbed

/// Where the processes of an offloading run live in a testbed: each PE group on its site's
/// host, the device's registrar and the users on the device, the edge registrar with the
/// nearest edge site and the remote one with the first far site.
struct OffloadingPlacement {
    typealias Site = OffloadingProcessRun.Placement.Site

    let topology: SiteStarTopology
    let plan: TopologyPlan
    let groups: [(name: String, delay: Double)]

    func host(_ site: Site) -> String {
        switch site {
        case .device: return SiteStarTopology.deviceHost
        case .edge: return groups.first { $0.delay > 0 && $0.delay < 0.010 }.map { topology.host(of: $0.name) } ?? SiteStarTopology.deviceHost
        case .remote: return groups.first { $0.delay >= 0.010 }.map { topology.host(of: $0.name) } ?? host(.edge)
        case .group(let name): return topology.host(of: name)
        }
    }

    /// The placement a process run uses: namespaces and addresses fixed now.
    var processPlacement: OffloadingProcessRun.Placement {
        var sites: [Site] = [.device, .edge, .remote] + groups.map { .group($0.name) }
        sites = Array(Set(sites))
        let namespaces = Dictionary(uniqueKeysWithValues: sites.map { ($0, plan.namespace(host($0))) })
        let addresses = Dictionary(uniqueKeysWithValues: sites.map { ($0, topology.address(of: host($0))) })
        return OffloadingProcessRun.Placement(executable: ChildProcess.currentExecutable, ipTool: Shell.ipTool ?? "/usr/sbin/ip",
                                              namespace: { namespaces[$0] ?? "" }, address: { addresses[$0] ?? "127.0.0.1" })
    }
}

/// `edgepool testbed experiment offloading`: the offloading scenario with each site in a
/// namespace of its own and the network delays applied by the testbed's links (netem or the
/// link emulator) instead of the PEs' delaying relays.
public struct OffloadingExperiment {
    public var scenario: OffloadingScenario
    /// Run this many times faster than real time (link delays ÷ k too): 1…100.
    public var timeScale: Double = 10
    public var transport: TransportProtocol = .mptcp
    /// Directory for the report.
    public var out = "offloading-testbed"

    public init(scenario: OffloadingScenario, timeScale: Double = 10, transport: TransportProtocol = .mptcp, out: String = "offloading-testbed") {
        self.scenario = scenario
        self.timeScale = timeScale
        self.transport = transport
        self.out = out
    }

    public func validate() throws {
        guard timeScale >= 1, timeScale <= 100 else { throw TestbedError("--time-scale must be 1…100") }
    }

    public func run() async throws {
        try TestbedHost.requireRoot()
        try validate()
        let chosen = scenario, timeScale = timeScale, transport = transport
        let groups = chosen.elements.map { (name: $0.name, delay: $0.delay.seconds) }
        let star = try SiteStarTopology(name: "offload", sites: groups.map { .init(name: $0.name, oneWayDelaySeconds: $0.delay / timeScale) })
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("offload.topo").path
        try star.text.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TestbedHost.loadTopology(file)
        let plan = try TestbedHost.bringUp(topology, file: file)
        defer { Teardown.remove(topology: topology.name) }
        let placement = OffloadingPlacement(topology: star, plan: plan, groups: groups).processPlacement
        print("sites: " + groups.map { "\($0.name) on \(star.host(of: $0.name)) (\(star.address(of: star.host(of: $0.name))))" }.joined(separator: ", "))
        let points = try await OffloadingLiveSweep.run(chosen) { count, seed in
            if Interrupts.received { throw TestbedError("interrupted") }
            return try await OffloadingProcessRun(scenario: chosen, users: count, timeScale: timeScale, seed: seed, transport: transport,
                                                  placement: placement).run()
        }
        let report = OffloadingReport(scenario: chosen, points: points,
                                      method: "live in a testbed (a namespace per site, link delays by \(Netem.available() ? "netem" : "EdgePool's link emulator"); a process per registrar, PE and the users, \(transport.rawValue)), time scale \(formatNumber(timeScale))× (capacities × k, inter-arrival times and delays ÷ k; results in scenario time)")
        try report.write(to: directory)
        print(report.markdown())
        print("Wrote \(directory.path)/{runs.csv,summary.csv,summary.md,utilization.svg,times.svg,speed.svg,scenario.json,offload.topo}")
    }
}
