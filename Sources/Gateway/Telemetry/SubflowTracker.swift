/// Follows the subflows of one MPTCP connection through periodic snapshots: how many were
/// open at once, how many ever existed, which were lost (disappeared, or stuck in repeated
/// retransmission timeouts: the path broke), and the bytes each carried.
/// Pure: fed snapshots by whoever can read them (sock_diag, `MPTCP_INFO`).
public struct SubflowTracker: Sendable {
    /// A subflow's identity: its local and remote endpoints ("ip:port").
    public struct Key: Hashable, Sendable {
        public var local: String
        public var remote: String
        public init(local: String, remote: String) {
            self.local = local
            self.remote = remote
        }
    }

    /// What one snapshot says about one subflow.
    public struct Sample: Hashable, Sendable {
        public var key: Key
        public var bytesAcked: UInt64
        public var bytesReceived: UInt64
        /// The subflow's path looks broken (repeated retransmission timeouts).
        public var failing: Bool
        public init(key: Key, bytesAcked: UInt64, bytesReceived: UInt64, failing: Bool = false) {
            self.key = key
            self.bytesAcked = bytesAcked
            self.bytesReceived = bytesReceived
            self.failing = failing
        }
    }

    private struct Entry: Sendable {
        var order: Int
        var bytesAcked: UInt64
        var bytesReceived: UInt64
        var open: Bool
        var failed = false
    }

    /// The connection's own endpoints: the subflow with these is the initial one.
    public let initial: Key
    private var entries: [Key: Entry] = [:]
    public private(set) var maximumOpen = 0
    public private(set) var lost = 0
    /// Bytes (all subflows) when the first subflow was lost; nil while none was.
    private var bytesAtFirstLoss: UInt64?

    public init(initial: Key) {
        self.initial = initial
    }

    /// A complete list of the connection's subflows as they are now.
    public mutating func observe(_ samples: [Sample]) {
        let present = Set(samples.map(\.key))
        for key in entries.keys where entries[key]!.open && !present.contains(key) {
            entries[key]!.open = false
            markLost(key)
        }
        for sample in samples {
            var entry = entries[sample.key] ?? Entry(order: entries.count, bytesAcked: 0, bytesReceived: 0, open: true)
            entry.bytesAcked = max(entry.bytesAcked, sample.bytesAcked)
            entry.bytesReceived = max(entry.bytesReceived, sample.bytesReceived)
            entry.open = true
            entries[sample.key] = entry
            if sample.failing { markLost(sample.key) }
        }
        maximumOpen = max(maximumOpen, samples.count)
    }

    /// Counts a subflow as lost once, whether it vanished or its path failed.
    private mutating func markLost(_ key: Key) {
        guard entries[key]?.failed == false else { return }
        entries[key]!.failed = true
        lost += 1
        if bytesAtFirstLoss == nil { bytesAtFirstLoss = totalBytes }
    }

    /// Subflow count from `MPTCP_INFO` alone (when no per-subflow detail is readable).
    public mutating func observeCount(_ open: Int) {
        maximumOpen = max(maximumOpen, open)
    }

    public var seen: Int { max(entries.count, maximumOpen) }

    public var totalBytes: UInt64 { entries.values.reduce(0) { $0 + $1.bytesAcked + $1.bytesReceived } }

    /// A subflow was lost and more bytes moved afterwards.
    public var carriedDataAfterLoss: Bool {
        guard let bytesAtFirstLoss else { return false }
        return totalBytes > bytesAtFirstLoss
    }

    public var subflows: [ConnectionRecord.Subflow] {
        // The initial subflow first, the others as they appeared.
        entries.sorted { ($0.key == initial ? -1 : $0.value.order) < ($1.key == initial ? -1 : $1.value.order) }.map { key, entry in
            ConnectionRecord.Subflow(local: key.local, remote: key.remote, initial: key == initial,
                                     bytesAcked: entry.bytesAcked, bytesReceived: entry.bytesReceived, open: entry.open)
        }
    }
}
