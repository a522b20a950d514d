import CalcApp
import Foundation
import ProcessSupport
import RSerPool

/// One point of the offloading scenario with every component a process of its own: three
/// `edgepool registrar` processes peering with ENRP (device, edge, remote), one
/// `edgepool calcapp-pe` per PE (registered with its nearest registrar; its network delay from
/// its delaying relay) and one `edgepool calcapp-pu` process with the users. Time-scaled like
/// `OffloadingLiveRun`; results in scenario time.
public struct OffloadingProcessRun: Sendable {
    public var scenario: OffloadingScenario
    public var users: Int
    public var timeScale: Double
    public var seed: UInt64
    public var transport: TransportProtocol
    /// Where the processes run; nil: all on loopback, delays from each PE's relay.
    public var placement: Placement?

    /// Where the processes of a run live when they are spread over network namespaces (a
    /// testbed): the namespace and address of each site, and the executables to start there.
    public struct Placement: Sendable {
        public enum Site: Hashable, Sendable {
            case device, edge, remote
            case group(String)
        }

        /// `edgepool` itself, started in a site's namespace by `ip netns exec`.
        public var executable: String
        public var ipTool: String
        public var namespace: @Sendable (Site) -> String
        public var address: @Sendable (Site) -> String

        public init(executable: String, ipTool: String, namespace: @escaping @Sendable (Site) -> String, address: @escaping @Sendable (Site) -> String) {
            self.executable = executable
            self.ipTool = ipTool
            self.namespace = namespace
            self.address = address
        }
    }

    public init(scenario: OffloadingScenario, users: Int, timeScale: Double, seed: UInt64, transport: TransportProtocol, placement: Placement? = nil) {
        self.scenario = scenario
        self.users = users
        self.timeScale = timeScale
        self.seed = seed
        self.transport = transport
        self.placement = placement
    }

    /// Starts `edgepool ARGUMENTS` at a site (in its namespace when placed).
    private func start(_ name: String, site: Placement.Site, _ arguments: [String]) throws -> ChildProcess {
        guard let placement else { return try ChildProcess.subcommand(name, arguments) }
        return try ChildProcess(name, ["netns", "exec", placement.namespace(site), placement.executable] + arguments,
                                executable: placement.ipTool, standardError: .discarded)
    }

    private func listenAddress(_ site: Placement.Site) -> String { placement.map { "\($0.address(site)):0" } ?? "127.0.0.1:0" }

    private func scaled(_ seconds: Double) -> String { "\(Int64((seconds / timeScale * 1e9).rounded()) / 1_000_000)ms" }

    public func run() async throws -> OffloadingRunResult {
        guard scenario.users.requestSize.kind == scenario.users.interArrival.kind, scenario.users.requestSize.kind != .uniform else {
            throw OffloadRunError("process mode supports exponential or constant sizes and intervals (the same for both); use --in-process")
        }
        // Registrars.
        var registrars: [ChildProcess] = []
        var asap: [String] = []
        var enrp: [String] = []
        let registrarSites: [Placement.Site] = [.device, .edge, .remote]
        for index in 0..<3 {
            let site = registrarSites[index]
            let process = try start("registrar-\(index + 1)", site: site, ["registrar", "--identifier", "\(index + 1)", "--listen", listenAddress(site),
                                                                          "--enrp-listen", listenAddress(site), "--transport", transport.rawValue,
                                                                      "--log-level", "error"] + enrp.flatMap { ["--peer", $0] })
            let ready = try await process.waitForReady()
            guard let asapAddress = ready.list("asap").first, let enrpAddress = ready.list("enrp").first else {
                throw OffloadRunError("a registrar's ready line without ASAP or ENRP address: \(ready)")
            }
            asap.append(asapAddress)
            enrp.append(enrpAddress)
            registrars.append(process)
        }
        func registrarArguments(nearest index: Int) -> [String] {
            ([asap[index]] + asap.enumerated().filter { $0.offset != index }.map(\.element)).flatMap { ["--registrar", $0] }
        }

        // PEs.
        var elements: [(group: String, process: ChildProcess, identifier: String)] = []
        for group in scenario.elements {
            let nearest = group.delay.seconds == 0 ? 0 : group.delay.seconds < 0.010 ? 1 : 2
            let site = Placement.Site.group(group.name)
            for index in 0..<group.count {
                let process = try start("\(group.name)-\(index + 1)", site: site, [
                    "calcapp-pe", "--pool", scenario.poolHandle, "--policy", scenario.policy,
                    "--capacity", "\(group.capacity * timeScale)", "--max-jobs", "\(scenario.maxJobs)", "--increment", "\(group.increment)",
                    "--listen", listenAddress(site),
                    // Placed in a testbed, the emulated link delays; on loopback, a relay.
                    "--delay", placement == nil ? scaled(group.delay.seconds) : "0ms", "--cookie-interval", scaled(scenario.cookieInterval.seconds),
                    "--cookie-calculations", "\(scenario.cookieCalculations)", "--secret", "offloading-\(seed)",
                    "--transport", transport.rawValue, "--log-level", "error", "--json",
                ] + registrarArguments(nearest: nearest))
                let ready = try await process.waitForReady()
                elements.append((group.name, process, ready["id"] ?? "?"))
            }
        }
        // Until the device's registrar knows every PE.
        for _ in 0..<100 {
            let resolver = try start("resolve", site: .device, ["resolve", "--registrar", asap[0], "--pool", scenario.poolHandle, "--count", "\(elements.count)"])
            try await resolver.waitForExit()
            if resolver.lines.filter({ $0.hasPrefix("  $") }).count == elements.count { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }

        // Users.
        let kind = scenario.users.requestSize.kind
        let user = try start("users", site: .device, [
            "calcapp-pu", "--pool", scenario.poolHandle, "--users", "\(users)", "--duration", scaled(scenario.sweep.duration.seconds),
            "--drain", "0s", "--request-size", "\(scenario.users.requestSize.mean)",
            "--inter-arrival", scaled(scenario.users.interArrival.mean), "--seed", "\(seed)",
            "--keep-alive", scaled(5), "--retry-delay", scaled(0.1), "--max-retry-delay", scaled(1.6),
            "--transport", transport.rawValue, "--json", "--log-level", "error",
        ] + (kind == .constant ? ["--constant"] : []) + registrarArguments(nearest: 0))
        let started = Date()
        try await user.waitForExit(timeout: scenario.sweep.duration.seconds / timeScale + 60)
        let measured = Date().timeIntervalSince(started)

        // Stop the PEs (they print their statistics) and the registrars.
        for element in elements { element.process.signal(SIGTERM) }
        var busy: [Double] = []
        for element in elements {
            try await element.process.waitForExit(timeout: 30)
            guard let json = element.process.lines.last(where: { $0.hasPrefix("{") }),
                  let statistics = try? JSONDecoder().decode(CalcAppStatisticsLine.self, from: Data(json.utf8)) else {
                throw OffloadRunError("\(element.process.name) printed no statistics")
            }
            busy.append(statistics.busySeconds)
        }
        for registrar in registrars { registrar.signal(SIGTERM) }
        for registrar in registrars { _ = try? await registrar.waitForExit(timeout: 10) }

        // Results, in scenario time.
        struct Record: Decodable { var size: Double; var element: String; var queuing: Double; var startup: Double; var processing: Double }
        struct Summary: Decodable { var submitted: Int; var completed: Int; var failovers: Int; var rejections: Int }
        let decoder = JSONDecoder()
        let records = user.lines.filter { $0.hasPrefix("{\"element\"") }.compactMap { try? decoder.decode(Record.self, from: Data($0.utf8)) }
        guard let summaryLine = user.lines.last(where: { $0.hasPrefix("{\"submitted\"") }),
              let summary = try? decoder.decode(Summary.self, from: Data(summaryLine.utf8)) else {
            throw OffloadRunError("the users printed no summary")
        }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
        var utilization: [String: Double] = [:]
        var completedBy: [String: Int] = [:]
        for group in scenario.elements {
            let members = elements.indices.filter { elements[$0].group == group.name }
            utilization[group.name] = members.map { busy[$0] / measured }.reduce(0, +) / Double(max(members.count, 1))
            let identifiers = Set(members.map { elements[$0].identifier })
            completedBy[group.name] = records.filter { identifiers.contains($0.element) }.count
        }
        let handling = records.map { ($0.queuing + $0.startup + $0.processing) * timeScale }
        return OffloadingRunResult(
            users: users, seed: seed, submitted: summary.submitted, completed: summary.completed,
            inFlight: summary.submitted - summary.completed,
            queuingTime: mean(records.map { $0.queuing * timeScale }), startupTime: mean(records.map { $0.startup * timeScale }),
            processingTime: mean(records.map { $0.processing * timeScale }), handlingTime: mean(handling),
            handlingSpeed: mean(zip(records, handling).map { $0.0.size / $0.1 }), utilization: utilization, completedBy: completedBy,
            rejections: summary.rejections, failovers: summary.failovers, events: 0)
    }
}

/// The part of `calcapp-pe --json` the runner needs.
struct CalcAppStatisticsLine: Decodable {
    var busySeconds: Double
}

/// Why a multi-process offloading run failed.
public struct OffloadRunError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
