import Charts
import Foundation
import Testbed

/// `edgepool testbed experiment access-aggregation`: a client on Wi-Fi (20 Mbit/s, 20 ms) and
/// cellular (10 Mbit/s, 100 ms, 1 % loss), other links 50 Mbit/s; bulk goodput over each path
/// alone (TCP), end-to-end MPTCP, and legacy TCP through EdgePool's gateway pair, for each
/// congestion control, with request latency under that load; repeated; tables with mean and
/// standard deviation, and a bar chart.
public struct AccessAggregationExperiment {
    /// Seconds of bulk traffic per run.
    public var seconds = 10.0
    /// Runs per congestion control and path.
    public var repetitions = 3
    /// Congestion controls, comma-separated.
    public var congestionControls = "cubic,reno,bbr"
    /// Directory for the report.
    public var out = "testbed-results"

    public init(seconds: Double = 10.0, repetitions: Int = 3, congestionControls: String = "cubic,reno,bbr", out: String = "testbed-results") {
        self.seconds = seconds
        self.repetitions = repetitions
        self.congestionControls = congestionControls
        self.out = out
    }

    /// The access topology; `clientPathManager` `.edgepool` runs EdgePool's path manager on the
    /// client (link state decides: the experiments take interfaces down).
    static func topology(cc: String, clientPathManager: Topology.Host.PathManager = .kernel, replacesFirstSubflow: Bool = false) -> String {
        """
        topology agg
        host client cc=\(cc) mptcp-subflows=2 mptcp-add-addr=2\(clientPathManager == .edgepool ? " pm=edgepool" : "")\(clientPathManager == .edgepool && replacesFirstSubflow ? " pm-first-subflow=replace" : "")
        host wifi forward
        host cell forward
        host server cc=\(cc) mptcp-subflows=2 mptcp-add-addr=2
        link client:wlan=10.85.1.1/24 wifi:c=10.85.1.2/24 rate=20mbit delay=20ms
        link client:wwan=10.86.1.1/24 cell:c=10.86.1.2/24 rate=10mbit delay=100ms loss=1%
        link wifi:s=10.85.2.2/24 server:e1=10.85.2.1/24 rate=50mbit
        link cell:s=10.86.2.2/24 server:e2=10.86.2.1/24 rate=50mbit
        route client default via 10.85.1.2 dev wlan
        route client 10.86.2.0/24 via 10.86.1.2 dev wwan
        route client default via 10.85.1.2 dev wlan from 10.85.1.1 table 101
        route client default via 10.86.1.2 dev wwan from 10.86.1.1 table 102
        route server default via 10.85.2.2 dev e1
        route server 10.86.1.0/24 via 10.86.2.2 dev e2
        route server default via 10.85.2.2 dev e1 from 10.85.2.1 table 101
        route server default via 10.86.2.2 dev e2 from 10.86.2.1 table 102
        endpoint server 10.86.2.1 dev e2 signal
        """
    }

    /// (label, address and transport of its flows).
    static let paths: [(String, String)] = [
        ("Wi-Fi TCP", "client:10.85.2.1 tcp"),
        ("cellular TCP", "client:10.86.2.1 tcp"),
        ("MPTCP", "client:10.85.2.1 mptcp"),
        ("TCP via gateway pair", "client:10.85.2.1 gateway"),
    ]

    /// A path's run: bulk goodput, and request/response latency under that load on the same
    /// path (1000-byte responses every 100 ms).
    static func traffic(_ path: String) -> String {
        "traffic bulk server -> \(path)\ntraffic requests server -> \(path) size=1000 every=100ms\n"
    }

    public func run() throws {
        try TestbedHost.requireRoot()
        let ccs = congestionControls.split(separator: ",").map(String.init)
        let directory = URL(fileURLWithPath: out).appendingPathComponent("access-aggregation-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var csv = "congestion_control,path,repetition,goodput_mbit_s,lost_bytes,latency_median_ms,latency_p90_ms,requests_answered\n"
        var goodputs: [String: [String: [Double]]] = [:]
        var latencies: [String: [String: [Double]]] = [:]
        for cc in ccs {
            let file = directory.appendingPathComponent("agg-\(cc).topo").path
            try Self.topology(cc: cc).write(toFile: file, atomically: true, encoding: .utf8)
            let topology = try TestbedHost.loadTopology(file)
            let plan = try TestbedHost.bringUp(topology, file: file)
            defer { Teardown.remove(topology: topology.name) }
            for (label, path) in Self.paths {
                for repetition in 1...repetitions {
                    let text = "scenario agg\ntopology agg.topo\nduration \(seconds)s\nrecord client:wlan client:wwan every 500ms\n" + Self.traffic(path)
                    let scenario = try ScenarioParser.parse(text)
                    var result = ScenarioResult(scenario: scenario)
                    try ScenarioPlayer.play(scenario, plan: plan, directory: directory, into: &result)
                    guard let flow = result.flows.first, let requests = result.flows.last, result.flows.count == 2 else {
                        throw TestbedError("no flow result")
                    }
                    let latency = SampleStatistics(requests.latencies.map(\.1))
                    latencies[cc, default: [:]][label, default: []] += requests.latencies.map(\.1)
                    // Goodput while the sender sent: bytes received by the end of the run's time,
                    // not what drained from buffers afterwards.
                    let within = flow.progress.last { $0.0 <= seconds } ?? (seconds, 0)
                    let mbit = Double(within.1) * 8 / max(within.0, 1e-9) / 1e6
                    goodputs[cc, default: [:]][label, default: []].append(mbit)
                    let lost = flow.stoppedEarly ? "undelivered \(flow.undelivered ?? 0)" : flow.lost.map(String.init) ?? "?"
                    csv += "\(cc),\(label),\(repetition),\(String(format: "%.2f", mbit)),\(lost),"
                        + String(format: "%.2f,%.2f,%d\n", latency.median, latency.quantile(0.9), latency.count)
                    print(String(format: "%@  %@ run %d: %.1f Mbit/s, lost %@; request latency median %.1f ms", cc, label, repetition, mbit, lost, latency.median))
                    fflush(nil)
                }
            }
        }
        try csv.write(to: directory.appendingPathComponent("runs.csv"), atomically: true, encoding: .utf8)
        var summary = "# Access aggregation\n\nWi-Fi 20 Mbit/s 20 ms, cellular 10 Mbit/s 100 ms 1 % loss (one way), other links 50 Mbit/s; \(repetitions) run(s) of \(Int(seconds)) s each; goodput in Mbit/s, mean ± standard deviation.\n\n"
        summary += "| path | " + ccs.joined(separator: " | ") + " |\n|---|" + ccs.map { _ in "---:" }.joined(separator: "|") + "|\n"
        for (label, _) in Self.paths {
            var cells: [String] = []
            for cc in ccs {
                let values = SampleStatistics(goodputs[cc]?[label] ?? [])
                let mean = values.count > 0 ? values.mean : 0, sd = values.count > 0 ? values.standardDeviation : 0
                cells.append(String(format: "%.1f ± %.1f", mean, sd))
            }
            summary += "| \(label) | " + cells.joined(separator: " | ") + " |\n"
        }
        summary += "\nRequest/response latency under that load on the same path (1000-byte responses every 100 ms; median [90th percentile] of all requests of the runs, ms):\n\n"
        summary += "| path | " + ccs.joined(separator: " | ") + " |\n|---|" + ccs.map { _ in "---:" }.joined(separator: "|") + "|\n"
        for (label, _) in Self.paths {
            let cells = ccs.map { cc -> String in
                let values = SampleStatistics(latencies[cc]?[label] ?? [])
                return values.count == 0 ? "–" : String(format: "%.1f [%.1f]", values.median, values.quantile(0.9))
            }
            summary += "| \(label) | " + cells.joined(separator: " | ") + " |\n"
        }
        try summary.write(to: directory.appendingPathComponent("summary.md"), atomically: true, encoding: .utf8)
        let chart = BarChart(
            title: "Access aggregation: Wi-Fi 20 Mbit/s + cellular 10 Mbit/s (mean ± sd of \(repetitions))", yLabel: "goodput (Mbit/s)",
            groups: Self.paths.map(\.0),
            series: ccs.map { cc in
                let statistics = Self.paths.map { SampleStatistics(goodputs[cc]?[$0.0] ?? []) }
                return BarChart.Series(name: cc, values: statistics.map { $0.count > 0 ? $0.mean : 0 },
                                       errors: statistics.map { $0.count > 0 ? $0.standardDeviation : 0 })
            })
        try chart.render().write(to: directory.appendingPathComponent("goodput.svg"), atomically: true, encoding: .utf8)
        print("report: \(directory.path)")
        print(summary)
    }
}
