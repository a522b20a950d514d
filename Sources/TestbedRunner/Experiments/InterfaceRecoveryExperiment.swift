import Foundation
import Testbed

/// `edgepool testbed experiment recovery`: the access-aggregation topology with one MPTCP
/// bulk flow; the Wi-Fi interface goes down and comes back up, again and again. Per cycle:
/// how long the flow needed after the loss to run at 80 % of the rate it settles at over
/// cellular alone, and after the return to run at 80 % of the rate over both; with mean,
/// median and standard deviation over the cycles.
public struct InterfaceRecoveryExperiment {
    /// Down/up cycles.
    public var cycles = 5
    /// Seconds the interface stays down in each cycle.
    public var downSeconds = 8.0
    /// Seconds it stays up after each return (and before the first loss).
    public var upSeconds = 12.0
    /// Congestion control of client and server.
    public var congestionControl = "bbr"
    /// mptcp (end to end) or gateway (TCP through EdgePool's gateway pair).
    public var transport = Scenario.Traffic.Transport.mptcp.rawValue
    /// Directory for the report.
    public var out = "testbed-results"

    public init(cycles: Int = 5, downSeconds: Double = 8.0, upSeconds: Double = 12.0, congestionControl: String = "bbr",
                transport: String = Scenario.Traffic.Transport.mptcp.rawValue, pathManager: PathManagerChoice = .kernel,
                out: String = "testbed-results") {
        self.pathManager = pathManager
        self.cycles = cycles
        self.downSeconds = downSeconds
        self.upSeconds = upSeconds
        self.congestionControl = congestionControl
        self.transport = transport
        self.out = out
    }

    public func validate() throws {
        guard cycles >= 1, cycles <= 100 else { throw TestbedError("--cycles must be 1…100") }
        guard downSeconds >= 2, upSeconds >= 2 else { throw TestbedError("--down-seconds and --up-seconds must be at least 2 (a phase needs a settled rate)") }
        guard transport == "mptcp" || transport == "gateway" else { throw TestbedError("--transport must be mptcp or gateway") }
    }

    /// The scenario: the first loss after one up period, then down/up cycles.
    static func scenario(cycles: Int, down: Double, up: Double, transport: String) throws -> Scenario {
        var text = "scenario interface-recovery\ntopology agg.topo\nduration \(up + Double(cycles) * (down + up))s\n"
        text += "record client:wlan client:wwan every 250ms\ntraffic bulk server -> client:10.85.2.1 \(transport)\n"
        for cycle in 0..<cycles {
            let loss = up + Double(cycle) * (down + up)
            text += "at \(loss)s down client:wlan\nat \(loss + down)s up client:wlan\n"
        }
        return try ScenarioParser.parse(text)
    }

    /// Which path manager the client runs: the kernel's, EdgePool's (`pm=edgepool`), or both
    /// one after the other, reported side by side.
    public enum PathManagerChoice: String, CaseIterable, Sendable {
        case kernel, edgepool, both
        var managers: [Topology.Host.PathManager] { self == .both ? [.kernel, .edgepool] : [self == .kernel ? .kernel : .edgepool] }
    }

    public var pathManager = PathManagerChoice.kernel
    /// EdgePool's path manager replaces the connection's first subflow when Wi-Fi is lost
    /// (`--first-subflow replace`) instead of keeping it.
    public var replacesFirstSubflow = false

    /// One run's figures per measure, for the side-by-side table.
    struct RunFigures {
        var manager: Topology.Host.PathManager
        var measures: [(label: String, values: [Double])]
        var flowLine: String
        var resultSummary: String
        var incomplete: String?
    }

    public func run() throws {
        try TestbedHost.requireRoot()
        let directory = URL(fileURLWithPath: out).appendingPathComponent("interface-recovery-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let runs = try pathManager.managers.map { manager in
            try runOnce(manager, directory: pathManager == .both ? directory.appendingPathComponent(manager.rawValue) : directory)
        }
        func cell(_ values: [Double]) -> String {
            let s = SampleStatistics(values)
            guard s.count > 0 else { return "– (0)" }
            return String(format: "%.2f ± %.2f (median %.2f, max %.2f; %d)", s.mean, s.standardDeviation, s.median, s.maximum, s.count)
        }
        var summary = """
        # Recovery after an interface goes down and up

        Access topology (Wi-Fi 20 Mbit/s 20 ms, cellular 10 Mbit/s 100 ms 1 % loss), \(congestionControl), \
        \(transport == "gateway" ? "TCP through EdgePool's gateway pair" : "MPTCP end to end"); \(cycles) cycle(s) of \
        client:wlan down for \(String(format: "%.0f", downSeconds)) s and up for \(String(format: "%.0f", upSeconds)) s. \
        Seconds, mean ± sd (median, max; cycles counted); a cycle that did not reach 80 % before the second half of \
        its phase is left out of its row.

        | measure | \(runs.map { $0.manager == .kernel ? "kernel PM" : (replacesFirstSubflow ? "EdgePool PM (pm=edgepool, first subflow replaced)" : "EdgePool PM (pm=edgepool)") }.joined(separator: " | ")) |
        |---|\(runs.map { _ in "---:" }.joined(separator: "|"))|

        """
        for (index, measure) in runs[0].measures.enumerated() {
            summary += "| \(measure.label) | " + runs.map { cell($0.measures[index].values) }.joined(separator: " | ") + " |\n"
        }
        for run in runs {
            summary += "\n" + (runs.count > 1 ? "## \(run.manager == .kernel ? "Kernel PM" : "EdgePool PM")\n\n" : "") + run.flowLine + "\n\n" + run.resultSummary
        }
        try summary.write(to: directory.appendingPathComponent("summary.md"), atomically: true, encoding: .utf8)
        print("report: \(directory.path)")
        print(summary)
        if let reason = runs.compactMap(\.incomplete).first { throw TestbedError("the experiment did not finish (\(reason)); partial results kept in \(directory.path)") }
    }

    private func runOnce(_ manager: Topology.Host.PathManager, directory: URL) throws -> RunFigures {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("agg.topo").path
        try AccessAggregationExperiment.topology(cc: congestionControl, clientPathManager: manager, replacesFirstSubflow: replacesFirstSubflow).write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TestbedHost.loadTopology(file)
        let scenario = try Self.scenario(cycles: cycles, down: downSeconds, up: upSeconds, transport: transport)
        let result = try ScenarioPlayer.execute(scenario, on: topology, file: file, directory: directory)
        guard let flow = result.flows.first else { throw TestbedError("no flow result (\(result.incomplete ?? "?"))") }

        let progress = flow.progress.map { (seconds: $0.0, bytes: $0.1) }
        let times = result.applied.map(\.seconds)
        var csv = "cycle,stall_after_loss_s,failover_s,stall_after_return_s,recovery_after_return_s\n"
        var stalls: [Double] = [], failovers: [Double] = [], returnStalls: [Double] = [], recoveries: [Double] = []
        let gaps = StallDetector.stalls(progress)
        for cycle in 0..<(times.count / 2) {
            let lossAt = times[2 * cycle], returnAt = times[2 * cycle + 1]
            let nextLoss = 2 * cycle + 2 < times.count ? times[2 * cycle + 2] : scenario.durationSeconds
            let stall = gaps.filter { $0.startSeconds >= lossAt - 0.5 && $0.startSeconds < returnAt }.map(\.seconds).max() ?? 0
            let returnStall = gaps.filter { $0.startSeconds >= returnAt - 0.5 && $0.startSeconds < nextLoss }.map(\.seconds).max() ?? 0
            returnStalls.append(returnStall)
            let failover = RecoveryDetector.recoveryTime(progress, event: lossAt, phaseEnd: returnAt)
            let recovery = RecoveryDetector.recoveryTime(progress, event: returnAt, phaseEnd: nextLoss)
            stalls.append(stall)
            failover.map { failovers.append($0) }
            recovery.map { recoveries.append($0) }
            csv += "\(cycle + 1),\(String(format: "%.3f", stall)),\(failover.map { String(format: "%.3f", $0) } ?? ""),\(String(format: "%.3f", returnStall)),\(recovery.map { String(format: "%.3f", $0) } ?? "")\n"
        }
        try csv.write(to: directory.appendingPathComponent("recovery.csv"), atomically: true, encoding: .utf8)
        let flowLine = "Flow: received \(flow.received) bytes, sent \(flow.sent.map(String.init) ?? "?"), "
            + "\(flow.stoppedEarly ? "undelivered \(flow.undelivered ?? 0)" : "lost \(flow.lost.map(String.init) ?? "?")"), corrupted \(flow.mismatched)."
        return RunFigures(manager: manager, measures: [
            ("longest stall after the loss", stalls),
            ("to 80 % of the cellular-only rate after the loss", failovers),
            ("longest stall after the return", returnStalls),
            ("to 80 % of the two-path rate after the return", recoveries),
        ], flowLine: flowLine, resultSummary: result.summary, incomplete: result.incomplete)
    }
}
