/// A rate cap on a device's egress as tc's token bucket filter (tbf) carries it out — the
/// path manager's per-path cap (`rate=`) and the testbed's link rates. The bucket holds at
/// least one MTU-sized pair of packets and 1 ms at the rate; the queue is about 100 ms at
/// the rate unless given.
public struct TokenBucketShaping: Hashable, Sendable {
    public var bitsPerSecond: UInt64
    /// The queue in packets (of 1,514 bytes); nil: about 100 ms at the rate, at least 10.
    public var queuePackets: Int?

    public init(bitsPerSecond: UInt64, queuePackets: Int? = nil) {
        self.bitsPerSecond = bitsPerSecond
        self.queuePackets = queuePackets
    }

    /// "20mbit", "512kbit", "1.5gbit", "64000bit" → bits per second (above 0, at most 100 Gbit/s).
    public static func parseRate(_ text: String) -> UInt64? {
        let lower = text.lowercased()
        for (suffix, scale) in [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)] where lower.hasSuffix(suffix) {
            guard let value = Double(lower.dropLast(suffix.count)), value > 0, value * scale <= 100e9, value * scale >= 1 else { return nil }
            return UInt64(value * scale)
        }
        return nil
    }

    public var burstBytes: Int { max(Int(bitsPerSecond / 8 / 1000), 3028) }
    public var queue: Int { queuePackets ?? max(10, Int(Double(bitsPerSecond) * 0.1 / 8 / 1514)) }
    public var limitBytes: Int { queue * 1514 }

    /// The qdisc's part of a tc command line: `tbf rate …bit burst … limit …`.
    public var tbfParameters: [String] {
        ["tbf", "rate", "\(bitsPerSecond)bit", "burst", "\(burstBytes)", "limit", "\(limitBytes)"]
    }

    /// "8 Mbit/s", "512 kbit/s".
    public var description: String {
        func format(_ value: Double) -> String { value == value.rounded() ? "\(Int(value))" : "\(value)" }
        switch bitsPerSecond {
        case 1_000_000_000...: return "\(format(Double(bitsPerSecond) / 1e9)) Gbit/s"
        case 1_000_000...: return "\(format(Double(bitsPerSecond) / 1e6)) Mbit/s"
        case 1_000...: return "\(format(Double(bitsPerSecond) / 1e3)) kbit/s"
        default: return "\(bitsPerSecond) bit/s"
        }
    }

    /// A device's root qdisc as the first line of `tc qdisc show dev DEV root` names it
    /// ("qdisc noqueue 0: root refcnt 2", "qdisc tbf edc0: root refcnt 2 rate 8Mbit …").
    public struct RootQdisc: Hashable, Sendable {
        public var kind: String
        /// "0:" for the kernel's own default.
        public var handle: String

        public init(kind: String, handle: String) {
            self.kind = kind
            self.handle = handle
        }

        public init?(tcOutput: String) {
            guard let line = tcOutput.split(separator: "\n").first(where: { $0.hasPrefix("qdisc ") }) else { return nil }
            let words = line.split(separator: " ")
            guard words.count >= 3 else { return nil }
            self.init(kind: String(words[1]), handle: String(words[2]))
        }

        /// The kernel's default (noqueue, pfifo_fast, fq_codel, mq, …: handle 0:): nobody chose it.
        public var isDefault: Bool { handle == "0:" }
    }
}
