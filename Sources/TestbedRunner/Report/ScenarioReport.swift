import Charts
import Foundation
import Testbed

/// The files of a scenario run's report.
public enum ScenarioReport {
    /// Writes interfaces.csv, flows.csv, requests.csv, summary.md, INCOMPLETE (when so) and
    /// the rate plot (rates.svg).
    public static func write(_ result: ScenarioResult, to directory: URL) throws {
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
        try ratesChart(scenario: scenario, recording: recording, applied: applied).render()
            .write(to: directory.appendingPathComponent("rates.svg"), atomically: true, encoding: .utf8)
    }

    /// Received rate per interface over time, in Mbit/s, with the events marked (events
    /// applied within 0.2 s of each other share a marker).
    static func ratesChart(scenario: Scenario, recording: InterfaceRecording, applied: [(seconds: Double, event: Scenario.Event)]) -> TimeSeriesChart {
        var markers: [TimeSeriesChart.Marker] = []
        for (time, event) in applied {
            if let last = markers.last, time - last.x < 0.2 {
                markers[markers.count - 1].label += ", " + ScenarioResult.describe(event)
            } else {
                markers.append(.init(x: time, label: ScenarioResult.describe(event)))
            }
        }
        let rates = recording.rates
        let series = recording.interfaces.map { interface in
            TimeSeriesChart.Series(name: "\(interface) in", points: rates.map { ($0.seconds, ($0.bits[interface]?.inbound ?? .nan) / 1e6) })
        }
        return TimeSeriesChart(title: "\(scenario.name): rate per interface", xLabel: "time (s)", yLabel: "Mbit/s", series: series,
                               markers: markers, xRange: 0...(scenario.durationSeconds.rounded(.up) + 1))
    }
}
