import Foundation
import Testbed

/// What a scenario run measured, and its report files.
struct ScenarioResult {
    struct Flow {
        var name: String
        /// (seconds since the receiver started, bytes received so far).
        var progress: [(Double, UInt64)]
        var received: UInt64
        var mismatched: UInt64
        var sent: UInt64?
        /// The receiver gave up waiting for the end of the stream: bytes still in buffers on
        /// the way are not "lost".
        var stoppedEarly = false
        var lost: UInt64? { stoppedEarly ? nil : sent.map { $0 >= received ? $0 - received : 0 } }
        var undelivered: UInt64? { stoppedEarly ? sent.map { $0 >= received ? $0 - received : 0 } : nil }
    }

    let scenario: Scenario
    var recording: InterfaceRecording?
    var applied: [(seconds: Double, event: Scenario.Event)] = []
    var flows: [Flow] = []
    /// Why the run stopped early; nil when it finished.
    var incomplete: String?

    init(scenario: Scenario) { self.scenario = scenario }

    static func describe(_ event: Scenario.Event) -> String {
        switch event.action {
        case .down: "\(event.endpoint) down"
        case .up: "\(event.endpoint) up"
        case .blackhole: "\(event.endpoint) blackholed"
        case .restore: "\(event.endpoint) restored"
        case .rate(let rate): "\(event.endpoint) rate \(Double(rate) / 1e6) Mbit/s"
        }
    }

    var summary: String {
        var lines = ["# \(scenario.name)", ""]
        if let incomplete { lines += ["**INCOMPLETE**: \(incomplete). The figures below cover what was recorded.", ""] }
        let boundaries = scenario.phaseBoundaries
        lines.append(String(format: "Duration %.1f s, %d phase(s); interfaces sampled every %.0f ms.", scenario.durationSeconds, max(boundaries.count - 1, 1),
                            scenario.intervalSeconds * 1000))
        lines += ["", "Events: " + (applied.isEmpty ? "none" : applied.map { String(format: "%.2f s %@", $0.seconds, Self.describe($0.event)) }.joined(separator: "; ")), ""]
        if let recording {
            let rates = recording.rates
            lines.append("| phase | " + recording.interfaces.map { "\($0) in Mbit/s | out" }.joined(separator: " | ") + " |")
            lines.append("|---|" + recording.interfaces.map { _ in "---:|---:" }.joined(separator: "|") + "|")
            for (start, end) in zip(boundaries, boundaries.dropFirst()) {
                let inside = rates.filter { $0.seconds > start && $0.seconds <= end }
                guard !inside.isEmpty else { continue }
                let cells = recording.interfaces.map { interface -> String in
                    let inbound = inside.map { $0.bits[interface]?.inbound ?? 0 }.reduce(0, +) / Double(inside.count) / 1e6
                    let outbound = inside.map { $0.bits[interface]?.outbound ?? 0 }.reduce(0, +) / Double(inside.count) / 1e6
                    return String(format: "%.1f | %.1f", inbound, outbound)
                }
                lines.append(String(format: "| %.1f–%.1f s | ", start, end) + cells.joined(separator: " | ") + " |")
            }
            lines.append("")
        }
        for flow in flows {
            let seconds = flow.progress.last?.0 ?? 0
            let stalls = StallDetector.stalls(flow.progress.map { (seconds: $0.0, bytes: $0.1) })
            lines.append("**\(flow.name)**: received \(flow.received) bytes in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(flow.received) * 8 / max(seconds, 1e-9) / 1e6)) Mbit/s)"
                         + ", sent \(flow.sent.map(String.init) ?? "?"), "
                         + (flow.stoppedEarly ? "not delivered when the receiver stopped waiting \(flow.undelivered.map(String.init) ?? "?")" : "lost \(flow.lost.map(String.init) ?? "?")")
                         + ", corrupted \(flow.mismatched)"
                         + "; longest stall \(String(format: "%.2f", stalls.first?.seconds ?? 0)) s")
            let boundaries = scenario.phaseBoundaries
            for (time, event) in applied {
                let near = stalls.filter { $0.startSeconds >= time - 1 && $0.startSeconds <= time + 2 }.max { $0.seconds < $1.seconds }
                let phaseEnd = boundaries.first { $0 > event.atSeconds + 1e-9 } ?? scenario.durationSeconds
                let recovery = RecoveryDetector.recoveryTime(flow.progress.map { (seconds: $0.0, bytes: $0.1) }, event: time, phaseEnd: phaseEnd)
                lines.append(String(format: "- after %@ at %.2f s: longest stall %.2f s; ", Self.describe(event), time, near?.seconds ?? 0)
                             + (recovery.map { String(format: "at 80 %% of the phase's settled rate after %.2f s", $0) } ?? "no settled rate in this phase"))
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    func write(to directory: URL) throws {
        if let recording { try recording.csv.write(to: directory.appendingPathComponent("interfaces.csv"), atomically: true, encoding: .utf8) }
        var flowsCSV = "flow,seconds,bytes\n"
        for (index, flow) in flows.enumerated() { for (t, b) in flow.progress { flowsCSV += "\(index),\(t),\(b)\n" } }
        try flowsCSV.write(to: directory.appendingPathComponent("flows.csv"), atomically: true, encoding: .utf8)
        try summary.write(to: directory.appendingPathComponent("summary.md"), atomically: true, encoding: .utf8)
        if incomplete != nil { try "incomplete\n".write(to: directory.appendingPathComponent("INCOMPLETE"), atomically: true, encoding: .utf8) }
        guard let recording, !recording.rates.isEmpty else { return }
        // gnuplot: received rate per interface over time, events as vertical lines.
        var script = """
        set datafile separator ","
        set key outside right
        set xlabel "time (s)"
        set ylabel "Mbit/s"
        set grid
        set title "\(scenario.name): rate per interface"

        """
        for (index, (time, event)) in applied.enumerated() {
            script += "set arrow \(index + 1) from \(time), graph 0 to \(time), graph 1 nohead dashtype 2 lc rgb \"gray40\"\n"
            script += "set label \(index + 1) \"\(Self.describe(event))\" at \(time), graph 0.97 rotate by 90 right font \",8\"\n"
        }
        let columns = recording.interfaces.enumerated().map { index, interface in
            "\"interfaces.csv\" using 1:($\(2 + index * 2)/1e6) with lines lw 2 title \"\(interface) in\""
        }
        for (terminal, name) in [("svg size 1000,500 dynamic", "rates.svg"), ("pngcairo size 1000,500", "rates.png")] {
            let full = script + "set terminal \(terminal)\nset output \"\(name)\"\nplot " + columns.joined(separator: ", \\\n     ") + "\n"
            try full.write(to: directory.appendingPathComponent(name.replacingOccurrences(of: ".", with: "-") + ".gp"), atomically: true, encoding: .utf8)
            guard let gnuplot = ["/usr/bin/gnuplot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { continue }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: gnuplot)
            process.arguments = [name.replacingOccurrences(of: ".", with: "-") + ".gp"]
            process.currentDirectoryURL = directory
            process.standardError = FileHandle.nullDevice
            try? process.run()
            process.waitUntilExit()
        }
    }
}
