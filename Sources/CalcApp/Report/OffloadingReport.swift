import Charts
import Foundation

/// Writes a sweep's results: every run (runs.csv), the summaries (summary.csv), a Markdown
/// table (summary.md) and plots (utilization.svg, times.svg, speed.svg).
public struct OffloadingReport: Sendable {
    public var scenario: OffloadingScenario
    public var points: [SweepPoint]
    /// What produced the figures (e.g. "simulation" or "live, time scale 10").
    public var method: String

    public init(scenario: OffloadingScenario, points: [SweepPoint], method: String) {
        self.scenario = scenario
        self.points = points
        self.method = method
    }

    var groups: [String] { scenario.elements.map(\.name) }

    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try runsCSV().write(to: directory.appendingPathComponent("runs.csv"), atomically: true, encoding: .utf8)
        try summaryCSV().write(to: directory.appendingPathComponent("summary.csv"), atomically: true, encoding: .utf8)
        try markdown().write(to: directory.appendingPathComponent("summary.md"), atomically: true, encoding: .utf8)
        try utilizationChart().render().write(to: directory.appendingPathComponent("utilization.svg"), atomically: true, encoding: .utf8)
        try timesChart().render().write(to: directory.appendingPathComponent("times.svg"), atomically: true, encoding: .utf8)
        try speedChart().render().write(to: directory.appendingPathComponent("speed.svg"), atomically: true, encoding: .utf8)
        if let chart = capacityOverTimeChart() {
            try chart.render().write(to: directory.appendingPathComponent("capacity-over-time.svg"), atomically: true, encoding: .utf8)
        }
        try String(decoding: scenario.encoded(), as: UTF8.self).write(to: directory.appendingPathComponent("scenario.json"), atomically: true, encoding: .utf8)
    }

    public func runsCSV() -> String {
        var lines = ["users,seed,submitted,completed,in_flight,queuing_s,startup_s,processing_s,handling_s,handling_speed,rejections,failovers,events,"
                     + groups.map { "utilization_\($0)" }.joined(separator: ",") + "," + groups.map { "completed_by_\($0)" }.joined(separator: ",")]
        for point in points {
            for run in point.runs {
                let fields: [String] = ["\(run.users)", "\(run.seed)", "\(run.submitted)", "\(run.completed)", "\(run.inFlight)",
                                        f(run.queuingTime), f(run.startupTime), f(run.processingTime), f(run.handlingTime), f(run.handlingSpeed),
                                        "\(run.rejections)", "\(run.failovers)", "\(run.events)"]
                    + groups.map { f(run.utilization[$0] ?? .nan) } + groups.map { "\(run.completedBy[$0] ?? 0)" }
                lines.append(fields.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func summaryCSV() -> String {
        var lines = ["users,metric,mean,min,max,q10,q90"]
        for point in points {
            var metrics: [(String, Summary)] = [("queuing_s", point.queuingTime), ("startup_s", point.startupTime),
                                                ("processing_s", point.processingTime), ("handling_s", point.handlingTime),
                                                ("handling_speed", point.handlingSpeed)]
            metrics += groups.map { ("utilization_\($0)", point.utilization($0)) }
            for (name, s) in metrics {
                lines.append([String(point.users), name, f(s.mean), f(s.min), f(s.max), f(s.q10), f(s.q90)].joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func markdown() -> String {
        var text = """
        # Offloading: \(scenario.name)

        Method: \(method). Pool policy \(scenario.policy.uppercased()), \(scenario.maxJobs) jobs per PE; \(scenario.sweep.repetitions) \
        repetition(s) of \(scenario.sweep.duration) per point; requests \(scenario.users.requestSize.kind.rawValue) with mean \
        \(formatNumber(scenario.users.requestSize.mean)) calculations every \(formatNumber(scenario.users.interArrival.mean)) s \
        (\(scenario.users.interArrival.kind.rawValue)).

        | group | PEs | capacity each | PLU increment | one-way delay |
        |---|---:|---:|---:|---:|

        """
        for group in scenario.elements {
            text += "| \(group.name) | \(group.count) | \(formatNumber(group.capacity))/s | \(Int((group.increment * 100).rounded())) % | \(group.delay) |\n"
        }
        text += "\nUsed capacity per PE (% of the run its PEs were busy; mean [10 %–90 %] over repetitions), and handling speed:\n\n"
        text += "| users | " + groups.joined(separator: " | ") + " | handling speed (calc/s) | handling time (s) | queuing | start-up | processing |\n"
        text += "|---:|" + String(repeating: "---:|", count: groups.count) + "---:|---:|---:|---:|---:|\n"
        for point in points {
            let cells = groups.map { group -> String in
                let s = point.utilization(group)
                return "\(pct(s.mean)) [\(pct(s.q10))–\(pct(s.q90))]"
            }
            let speed = point.handlingSpeed
            text += "| \(point.users) | " + cells.joined(separator: " | ")
                + " | \(Int(speed.mean.rounded())) [\(Int(speed.q10.rounded()))–\(Int(speed.q90.rounded()))]"
                + " | \(t(point.handlingTime.mean)) | \(t(point.queuingTime.mean)) | \(t(point.startupTime.mean)) | \(t(point.processingTime.mean)) |\n"
        }
        let submitted = points.flatMap(\.runs).map(\.submitted).reduce(0, +)
        let completed = points.flatMap(\.runs).map(\.completed).reduce(0, +)
        let inFlight = points.flatMap(\.runs).map(\.inFlight).reduce(0, +)
        text += "\nRequests: \(submitted) submitted = \(completed) completed + \(inFlight) queued or in progress at the end of their run.\n"
        text += "\nPlots: `utilization.svg`, `times.svg`, `speed.svg`"
            + (capacityOverTimeChart() != nil ? ", `capacity-over-time.svg`" : "") + ". Every run: `runs.csv`; summaries: `summary.csv`.\n"
        return text
    }

    func categories() -> [String] { points.map { String($0.users) } }

    public func utilizationChart() -> LineChart {
        LineChart(title: "Used capacity per PE", xLabel: "pool users", yLabel: "used capacity (%)", categories: categories(),
                 series: groups.map { group in
                     LineChart.Series(name: group, values: points.map { 100 * $0.utilization(group).mean },
                                     bars: points.map { let s = $0.utilization(group); return (100 * s.q10, 100 * s.q90) })
                 }, yMaximum: 100)
    }

    public func timesChart() -> LineChart {
        LineChart(title: "Handling time and its parts", xLabel: "pool users", yLabel: "seconds (mean)", categories: categories(), series: [
            LineChart.Series(name: "handling", values: points.map { $0.handlingTime.mean }),
            LineChart.Series(name: "queuing", values: points.map { $0.queuingTime.mean }),
            LineChart.Series(name: "start-up", values: points.map { $0.startupTime.mean }),
            LineChart.Series(name: "processing", values: points.map { $0.processingTime.mean }),
        ])
    }

    /// Used capacity per group over the run, at the sweep's middle point, averaged over its
    /// repetitions (simulated runs carry the samples).
    public func capacityOverTimeChart() -> LineChart? {
        guard !points.isEmpty else { return nil }
        let point = points[points.count / 2]
        let runs = point.runs.filter { !$0.capacityOverTime.isEmpty }
        guard let first = runs.first, let length = first.capacityOverTime.values.first?.count, length > 0 else { return nil }
        let step = scenario.sweep.duration.seconds / Double(length)
        let categories = (0..<length).map { index -> String in index % max(1, length / 6) == 0 ? formatNumber((Double(index) * step).rounded()) : "" }
        return LineChart(title: "Used capacity over time, \(point.users) users", xLabel: "seconds", yLabel: "used capacity (%)",
                        categories: categories, series: groups.map { group in
                            LineChart.Series(name: group, values: (0..<length).map { index in
                                100 * runs.compactMap { $0.capacityOverTime[group].flatMap { index < $0.count ? $0[index] : nil } }.reduce(0, +) / Double(runs.count)
                            })
                        }, yMaximum: 100)
    }

    public func speedChart() -> LineChart {
        LineChart(title: "Handling speed", xLabel: "pool users", yLabel: "calculations/s", categories: categories(), series: [
            LineChart.Series(name: "mean [10–90 %]", values: points.map { $0.handlingSpeed.mean },
                            bars: points.map { ($0.handlingSpeed.q10, $0.handlingSpeed.q90) }),
        ])
    }

    private func f(_ value: Double) -> String { value.isNaN ? "" : String(format: "%.6g", value) }
    private func pct(_ value: Double) -> String { value.isNaN ? "–" : String(format: "%.1f", 100 * value) }
    private func t(_ value: Double) -> String { value.isNaN ? "–" : String(format: "%.3f", value) }
}
