import Foundation
import Testbed

/// The files of a scenario run's report.
public enum ScenarioReport {
    /// Writes interfaces.csv, flows.csv, requests.csv, summary.md, INCOMPLETE (when so) and
    /// the rate plots; a missing gnuplot becomes a note in the result and on stderr.
    public static func write(_ result: inout ScenarioResult, to directory: URL) throws {
        let hasPlots = !(result.recording?.rates.isEmpty ?? true)
        if hasPlots, Gnuplot.executable == nil {
            result.notes.append(Gnuplot.missingNote)
            Gnuplot.warnMissing()
        }
        let scenario = result.scenario, recording = result.recording, flows = result.flows, applied = result.applied
        if let recording { try recording.csv.write(to: directory.appendingPathComponent("interfaces.csv"), atomically: true, encoding: .utf8) }
        var flowsCSV = "flow,seconds,bytes\n"
        for (index, flow) in flows.enumerated() { for (t, b) in flow.progress { flowsCSV += "\(index),\(t),\(b)\n" } }
        try flowsCSV.write(to: directory.appendingPathComponent("flows.csv"), atomically: true, encoding: .utf8)
        if flows.contains(where: { !$0.latencies.isEmpty }) {
            var csv = "flow,sent_seconds,latency_ms\n"
            for (index, flow) in flows.enumerated() { for (t, ms) in flow.latencies { csv += "\(index),\(t),\(ms)\n" } }
            try csv.write(to: directory.appendingPathComponent("requests.csv"), atomically: true, encoding: .utf8)
        }
        try result.summary.write(to: directory.appendingPathComponent("summary.md"), atomically: true, encoding: .utf8)
        if result.incomplete != nil { try "incomplete\n".write(to: directory.appendingPathComponent("INCOMPLETE"), atomically: true, encoding: .utf8) }
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
        script += "set xrange [0:\(Int(scenario.durationSeconds.rounded(.up)) + 1)]\n"
        // One marker per moment; events applied together share a label.
        var moments: [(time: Double, text: String)] = []
        for (time, event) in applied {
            if let last = moments.last, time - last.time < 0.2 {
                moments[moments.count - 1].text += ", " + ScenarioResult.describe(event)
            } else {
                moments.append((time, ScenarioResult.describe(event)))
            }
        }
        for (index, moment) in moments.enumerated() {
            script += "set arrow \(index + 1) from \(moment.time), graph 0 to \(moment.time), graph 1 nohead dashtype 2 lc rgb \"gray40\"\n"
            script += "set label \(index + 1) \"\(moment.text)\" at \(moment.time), graph 0.97 rotate by 90 right font \",8\"\n"
        }
        let columns = recording.interfaces.enumerated().map { index, interface in
            "\"interfaces.csv\" using 1:($\(2 + index * 2)/1e6) with lines lw 2 title \"\(interface) in\""
        }
        for (terminal, name) in [("svg size 1000,500 dynamic", "rates.svg"), ("pngcairo size 1000,500", "rates.png")] {
            let full = script + "set terminal \(terminal)\nset output \"\(name)\"\nplot " + columns.joined(separator: ", \\\n     ") + "\n"
            try Gnuplot.draw(full, scriptName: name.replacingOccurrences(of: ".", with: "-") + ".gp", in: directory)
        }
    }
}
