/// Interface byte counters sampled over a run, turned into rates (bwm-ng style), and what a
/// receiver's byte count over time says about stalls.
public struct InterfaceRecording: Sendable {
    public struct Sample: Hashable, Sendable {
        public var seconds: Double
        /// Cumulative counters per interface ("host:if" → (rx, tx) bytes).
        public var counters: [String: (rx: UInt64, tx: UInt64)]
        public init(seconds: Double, counters: [String: (rx: UInt64, tx: UInt64)]) {
            self.seconds = seconds
            self.counters = counters
        }
        public static func == (a: Sample, b: Sample) -> Bool {
            a.seconds == b.seconds && a.counters.keys == b.counters.keys
                && a.counters.allSatisfy { key, value in b.counters[key].map { $0.rx == value.rx && $0.tx == value.tx } ?? false }
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(seconds) }
    }

    public var interfaces: [String]
    public private(set) var samples: [Sample] = []

    public init(interfaces: [String]) {
        self.interfaces = interfaces
    }

    public mutating func append(_ sample: Sample) { samples.append(sample) }

    /// Rates between consecutive samples, bits per second: (time at the interval's end, [if: (in, out)]).
    public var rates: [(seconds: Double, bits: [String: (inbound: Double, outbound: Double)])] {
        zip(samples, samples.dropFirst()).map { previous, current in
            let span = max(current.seconds - previous.seconds, 1e-9)
            var bits: [String: (inbound: Double, outbound: Double)] = [:]
            for interface in interfaces {
                let before = previous.counters[interface] ?? (0, 0), after = current.counters[interface] ?? before
                bits[interface] = (Double(after.rx &- before.rx) * 8 / span, Double(after.tx &- before.tx) * 8 / span)
            }
            return (current.seconds, bits)
        }
    }

    /// CSV: time, then in/out bits per second for each interface.
    public var csv: String {
        var lines = ["seconds," + interfaces.map { "\($0) in bit/s,\($0) out bit/s" }.joined(separator: ",")]
        for (seconds, bits) in rates {
            lines.append(String(seconds) + "," + interfaces.map { "\(Int(bits[$0]?.inbound ?? 0)),\(Int(bits[$0]?.outbound ?? 0))" }.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The longest time a receiver got nothing, from its progress reports (time, bytes so far).
public enum StallDetector {
    public struct Stall: Hashable, Sendable {
        public var startSeconds: Double
        public var seconds: Double
    }

    /// Gaps between consecutive progress points where the byte count did not grow, merged;
    /// longest first. `progress` must be sorted by time.
    public static func stalls(_ progress: [(seconds: Double, bytes: UInt64)], atLeast minimum: Double = 0) -> [Stall] {
        var stalls: [Stall] = []
        var start: Double?
        for (previous, current) in zip(progress, progress.dropFirst()) {
            if current.bytes == previous.bytes {
                if start == nil { start = previous.seconds }
            } else if let began = start {
                stalls.append(Stall(startSeconds: began, seconds: previous.seconds - began + (current.seconds - previous.seconds)))
                start = nil
            }
        }
        if let began = start, let last = progress.last { stalls.append(Stall(startSeconds: began, seconds: last.seconds - began)) }
        return stalls.filter { $0.seconds >= minimum }.sorted { $0.seconds > $1.seconds }
    }
}

/// How long a flow took to settle after an event: the time until its rate (over `window`)
/// reached 80 % of the rate it settled at in the second half of the phase and stayed there
/// through the first half. Catches slow recoveries that a zero-byte stall does not (a subflow
/// trickling in back-off), and does not take the burst of reordered data that a returning
/// path releases, followed by another stall, for recovery.
public enum RecoveryDetector {
    public static let settledFraction = 0.8

    /// `progress` sorted by time; nil when the phase carried (almost) nothing or the flow was
    /// not steadily at 80 % before the second half of the phase began.
    public static func recoveryTime(_ progress: [(seconds: Double, bytes: UInt64)], event: Double, phaseEnd: Double,
                                    window: Double = 0.5) -> Double? {
        func bytes(at time: Double) -> Double {
            // Linear between the progress points around `time`.
            guard let after = progress.firstIndex(where: { $0.seconds >= time }) else { return Double(progress.last?.bytes ?? 0) }
            guard after > 0 else { return Double(progress[0].bytes) }
            let a = progress[after - 1], b = progress[after]
            let span = b.seconds - a.seconds
            let fraction = span > 0 ? (time - a.seconds) / span : 1
            return Double(a.bytes) + fraction * (Double(b.bytes) - Double(a.bytes))
        }
        func rate(at time: Double) -> Double { (bytes(at: time + window) - bytes(at: time)) / window }
        let step = window / 5
        let settledStart = event + (phaseEnd - event) / 2
        var settledRates: [Double] = []
        var time = settledStart
        while time + window <= phaseEnd {
            settledRates.append(rate(at: time))
            time += step
        }
        guard !settledRates.isEmpty else { return nil }
        let settled = settledRates.sorted()[settledRates.count / 2]
        guard settled > 0 else { return nil }
        // The end of the last window before the settled half that ran below the threshold.
        var recovered: Double?
        time = event
        while time < settledStart && time + window <= phaseEnd {
            if rate(at: time) < settledFraction * settled {
                recovered = nil
            } else if recovered == nil {
                recovered = time
            }
            time += step
        }
        return recovered.map { $0 - event }
    }
}
