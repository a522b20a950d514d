import Foundation

/// What a scenario run measured, and its report files.
public struct ScenarioResult {
    /// One flow's outcome, read from its receiver's and sender's report lines.
    public struct Flow {
        public var name: String
        public var kind: Scenario.Traffic.Kind
        /// (seconds on the run's clock, bytes received so far).
        public var progress: [(Double, UInt64)] = []
        public var received: UInt64 = 0
        public var mismatched: UInt64 = 0
        public var sent: UInt64?
        /// The receiver gave up waiting for the end of the stream: bytes still in buffers on
        /// the way are not "lost".
        public var stoppedEarly = false
        /// What the receiver said went wrong, if anything.
        public var error: String?
        /// Requests: (sent at, latency in milliseconds) per answered request.
        public var latencies: [(Double, Double)] = []
        public var requestsIssued = 0
        /// Video: frames the encoder produced and the viewer got, and the viewer's stalls.
        public var framesSent: Int?
        public var framesReceived = 0
        public var viewerStalls: [(at: Double, seconds: Double)] = []
        public var viewerStartedAt: Double?
        public var peakBufferBytes = 0
        public var overflowBytes = 0
        /// Media seconds the encoder produced per second (ffmpeg's speed); below 1 it lagged.
        public var encoderSpeed: Double?

        public var lost: UInt64? { stoppedEarly ? nil : sent.map { $0 >= received ? $0 - received : 0 } }
        public var undelivered: UInt64? { stoppedEarly ? sent.map { $0 >= received ? $0 - received : 0 } : nil }

        public init(name: String, kind: Scenario.Traffic.Kind, progress: [(Double, UInt64)] = [], received: UInt64 = 0, mismatched: UInt64 = 0, sent: UInt64? = nil) {
            self.name = name
            self.kind = kind
            self.progress = progress
            self.received = received
            self.mismatched = mismatched
            self.sent = sent
        }

        public init(name: String, kind: Scenario.Traffic.Kind, receiverLines: [String], senderLines: [String]) {
            self.init(name: name, kind: kind)
            for line in receiverLines {
                let words = line.split(separator: " ").map(String.init)
                guard let first = words.first else { continue }
                switch first {
                case "progress" where words.count == 3:
                    if let t = Double(words[1]), let b = UInt64(words[2]) { progress.append((t, b)) }
                case "received" where words.count >= 5:
                    // received N bytes, mismatched M
                    received = UInt64(words[1]) ?? 0
                    mismatched = UInt64(words[4]) ?? 0
                case "request" where words.count == 3:
                    if let t = Double(words[1]), let ms = Double(words[2]) { latencies.append((t, ms)) }
                case "requests" where words.count >= 6:
                    // requests N answered M mismatched X
                    requestsIssued = Int(words[1]) ?? 0
                    mismatched = UInt64(words[5]) ?? 0
                case "stall" where words.count == 3:
                    if let t = Double(words[1]), let s = Double(words[2]) { viewerStalls.append((t, s)) }
                case "viewer":
                    let values = Dictionary(stride(from: 1, to: words.count - 1, by: 2).map { (words[$0], words[$0 + 1]) }, uniquingKeysWith: { a, _ in a })
                    framesReceived = Int(values["video-frames"] ?? "") ?? 0
                    received = UInt64(values["received"] ?? "") ?? 0
                    peakBufferBytes = Int(values["peak-buffer"] ?? "") ?? 0
                    overflowBytes = Int(values["overflow"] ?? "") ?? 0
                    viewerStartedAt = Double(values["started"] ?? "").flatMap { $0 >= 0 ? $0 : nil }
                case "stopped:":
                    stoppedEarly = true
                    error = line
                case "error:", "error":
                    error = line
                default:
                    break
                }
            }
            if case .requests = kind { received = progress.last?.1 ?? 0 }
            for line in senderLines {
                let words = line.split(separator: " ").map(String.init)
                if words.first == "sent", words.count >= 5, words[1] == "frames" {
                    // sent frames N bytes B speed X status S
                    framesSent = Int(words[2])
                    sent = UInt64(words[4])
                    encoderSpeed = words.count >= 7 ? Double(words[6]) : nil
                } else if words.first == "sent", words.count >= 2 {
                    sent = UInt64(words[1])
                } else if words.first == "answered", words.count >= 4 {
                    sent = UInt64(words[3].trimmingCharacters(in: .punctuationCharacters))
                }
            }
        }
    }

    /// Below this encoder speed a video flow's interruptions are partly the sender's.
    public static let realTimeSpeed = 0.99

    /// A user command of the scenario and how it ended.
    public struct CommandRun {
        public var command: Scenario.Command
        public var startedAt: Double
        public var log: String
        public var outcome = "running"

        public init(command: Scenario.Command, startedAt: Double, log: String, outcome: String = "running") {
            self.command = command
            self.startedAt = startedAt
            self.log = log
            self.outcome = outcome
        }
    }

    public let scenario: Scenario
    public var recording: InterfaceRecording?
    public var applied: [(seconds: Double, event: Scenario.Event)] = []
    public var flows: [Flow] = []
    public var commands: [CommandRun] = []
    /// Why the run stopped early; nil when it finished.
    public var incomplete: String?
    /// What the report could not do (a plotting tool missing), said in the summary too.
    public var notes: [String] = []

    public init(scenario: Scenario) { self.scenario = scenario }

    public static func describe(_ event: Scenario.Event) -> String {
        switch event.action {
        case .down: "\(event.endpoint) down"
        case .up: "\(event.endpoint) up"
        case .blackhole: "\(event.endpoint) blackholed"
        case .restore: "\(event.endpoint) restored"
        case .rate(let rate): "\(event.endpoint) rate \(Double(rate) / 1e6) Mbit/s"
        }
    }

    /// The report's summary.md: per phase rates, per flow outcomes, events, commands.
    public var summary: String {
        var lines = ["# \(scenario.name)", ""]
        if let incomplete { lines += ["**INCOMPLETE**: \(incomplete). The figures below cover what was recorded.", ""] }
        for note in notes { lines += ["Note: \(note)", ""] }
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
            lines += flowSummary(flow)
            lines.append("")
        }
        if !commands.isEmpty {
            lines.append("Commands:")
            for run in commands {
                lines.append(String(format: "- %.2f s on %@: `%@` — %@ (output in %@)", run.startedAt, run.command.host,
                                    run.command.arguments.joined(separator: " "), run.outcome, run.log))
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    private func flowSummary(_ flow: Flow) -> [String] {
        var lines: [String] = []
        let progress = flow.progress.map { (seconds: $0.0, bytes: $0.1) }
        let stalls = StallDetector.stalls(progress)
        let seconds = max((flow.progress.last?.0 ?? 0) - (flow.progress.first?.0 ?? 0), 1e-9)
        let loss = flow.stoppedEarly ? "not delivered when the receiver stopped waiting \(flow.undelivered.map(String.init) ?? "?")"
            : "lost \(flow.lost.map(String.init) ?? "?")"
        switch flow.kind {
        case .bulk:
            lines.append("**\(flow.name)**: received \(flow.received) bytes in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(flow.received) * 8 / seconds / 1e6)) Mbit/s)"
                         + ", sent \(flow.sent.map(String.init) ?? "?"), \(loss), corrupted \(flow.mismatched)"
                         + "; longest stall \(String(format: "%.2f", stalls.first?.seconds ?? 0)) s")
        case .requests(let size, let interval):
            let latency = SampleStatistics(flow.latencies.map(\.1))
            lines.append("**\(flow.name)**: \(flow.latencies.count) of \(flow.requestsIssued) requests answered (\(size)-byte responses every "
                         + String(format: "%.0f ms", interval * 1000) + "), corrupted bytes \(flow.mismatched); latency "
                         + (latency.count == 0 ? "none measured"
                            : String(format: "median %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms", latency.median, latency.quantile(0.9), latency.quantile(0.99), latency.maximum)))
            let boundaries = scenario.phaseBoundaries
            for (start, end) in zip(boundaries, boundaries.dropFirst()) {
                let inside = SampleStatistics(flow.latencies.filter { $0.0 >= start && $0.0 < end }.map(\.1))
                guard inside.count > 0 else { continue }
                lines.append(String(format: "- %.1f–%.1f s: %d requests, median %.2f ms, max %.2f ms", start, end, inside.count, inside.median, inside.maximum))
            }
        case .video(let bits, let buffer, let preroll):
            let framesLost = flow.framesSent.map { max($0 - flow.framesReceived, 0) }
            lines.append("**\(flow.name)**: \(String(format: "%.1f", Double(bits) / 1e6)) Mbit/s live stream; video frames received \(flow.framesReceived) of "
                         + "\(flow.framesSent.map(String.init) ?? "?") (lost \(framesLost.map(String.init) ?? "?")); bytes received \(flow.received), sent \(flow.sent.map(String.init) ?? "?"), \(loss)")
            let stalled = flow.viewerStalls.reduce(0) { $0 + $1.seconds }
            lines.append("- viewer (\(buffer >> 20) MiB buffer, " + String(format: "%.1f s pre-roll", preroll) + "): playback started at "
                         + (flow.viewerStartedAt.map { String(format: "%.2f s", $0) } ?? "never") + ", "
                         + (flow.viewerStalls.isEmpty ? "no interruption" : String(format: "%d interruption(s), %.2f s in all, longest %.2f s", flow.viewerStalls.count, stalled,
                                                                                 flow.viewerStalls.map(\.seconds).max() ?? 0))
                         + String(format: "; peak buffer %.1f MiB", Double(flow.peakBufferBytes) / 1048576) + (flow.overflowBytes > 0 ? ", overflowed by \(flow.overflowBytes) bytes" : ""))
            lines.append("- longest gap in received bytes: " + String(format: "%.2f s", stalls.first?.seconds ?? 0))
            if let speed = flow.encoderSpeed, speed < Self.realTimeSpeed {
                lines.append(String(format: "- **the encoder ran at %.3f× real time**: the stream itself fell behind (CPU), not only the network", speed))
            }
        }
        if let error = flow.error { lines.append("- receiver: \(error)") }
        let boundaries = scenario.phaseBoundaries
        for (time, event) in applied {
            let near = stalls.filter { $0.startSeconds >= time - 1 && $0.startSeconds <= time + 2 }.max { $0.seconds < $1.seconds }
            let phaseEnd = boundaries.first { $0 > event.atSeconds + 1e-9 } ?? scenario.durationSeconds
            var line = String(format: "- after %@ at %.2f s: longest stall %.2f s", Self.describe(event), time, near?.seconds ?? 0)
            if case .bulk = flow.kind {
                let recovery = RecoveryDetector.recoveryTime(progress, event: time, phaseEnd: phaseEnd)
                line += "; " + (recovery.map { String(format: "at 80 %% of the phase's settled rate after %.2f s", $0) } ?? "not at 80 % of the phase's settled rate before its second half")
            }
            if case .requests = flow.kind {
                let around = flow.latencies.filter { $0.0 >= time - 1 && $0.0 <= time + 2 }.map(\.1).max()
                line += around.map { String(format: "; slowest request around it %.1f ms", $0) } ?? ""
            }
            lines.append(line)
        }
        return lines
    }
}
