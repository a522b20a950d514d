/// One relayed connection as the per-connection log holds it (one JSON object per line).
public struct ConnectionRecord: Codable, Hashable, Sendable {
    /// How a side of the relay ended up talking.
    public enum Transport: String, Codable, Hashable, Sendable {
        /// A real MPTCP connection.
        case mptcp
        /// An MPTCP socket that fell back to TCP (the peer or a middlebox dropped the options).
        case fallback
        /// Plain TCP.
        case tcp
    }

    /// One side of the relay: the client's connection or the upstream one.
    public struct Side: Codable, Hashable, Sendable {
        public var local: String
        public var remote: String
        public var transport: Transport
        /// Most subflows open at once (0 for TCP).
        public var subflowsMax: Int = 0
        /// Different subflows seen over the connection's life.
        public var subflowsSeen: Int = 0
        /// Subflows that disappeared while the connection went on.
        public var subflowsLost: Int = 0
        /// Payload bytes read from this side.
        public var bytesIn: UInt64 = 0
        /// Per-subflow detail where the gateway could read it (sock_diag, root).
        public var subflows: [Subflow]? = nil

        public init(local: String, remote: String, transport: Transport) {
            self.local = local
            self.remote = remote
            self.transport = transport
        }
    }

    /// One MPTCP subflow: its addresses and the bytes it carried (tcp_info).
    public struct Subflow: Codable, Hashable, Sendable {
        public var local: String
        public var remote: String
        /// The subflow the connection started on.
        public var initial: Bool
        public var bytesAcked: UInt64
        public var bytesReceived: UInt64
        /// Still open when last seen.
        public var open: Bool

        public init(local: String, remote: String, initial: Bool, bytesAcked: UInt64, bytesReceived: UInt64, open: Bool) {
            self.local = local
            self.remote = remote
            self.initial = initial
            self.bytesAcked = bytesAcked
            self.bytesReceived = bytesReceived
            self.open = open
        }
    }

    /// What a SOCKS5 UDP association carried (its control connection is the record's client).
    public struct UDPAssociation: Codable, Hashable, Sendable {
        /// The relay's client-facing address (BND.ADDR:BND.PORT of the reply).
        public var relay: String
        public var datagramsFromClient: UInt64 = 0
        public var bytesFromClient: UInt64 = 0
        public var datagramsToClient: UInt64 = 0
        public var bytesToClient: UInt64 = 0
        /// Datagrams not relayed, either way (malformed, fragments, refused, unknown peers…).
        public var datagramsDropped: UInt64 = 0
        /// Distinct peers the client sent to.
        public var peers: Int = 0

        public init(relay: String) { self.relay = relay }
    }

    public var id: UInt64
    /// socks5, http, reverse, entry, exit.
    public var mode: String
    /// Unix time in seconds (fractional) when the client connected.
    public var start: Double
    public var durationSeconds: Double
    /// What the client asked for (host:port, pool handle, or the fixed forward).
    public var destination: String
    public var user: String?
    public var client: Side
    public var upstream: Side?
    /// ok, refused, failed, timeout, drained.
    public var outcome: String
    public var error: String?
    /// A subflow of either side was lost and the connection still carried data afterwards
    /// and ended without error.
    public var survivedPathLoss: Bool
    /// Set for a SOCKS5 UDP association (payload bytes; headers not counted).
    public var udp: UDPAssociation?

    public init(id: UInt64, mode: String, start: Double, durationSeconds: Double, destination: String, user: String?,
                client: Side, upstream: Side?, outcome: String, error: String?, survivedPathLoss: Bool, udp: UDPAssociation? = nil) {
        self.id = id
        self.mode = mode
        self.start = start
        self.durationSeconds = durationSeconds
        self.destination = destination
        self.user = user
        self.client = client
        self.upstream = upstream
        self.outcome = outcome
        self.error = error
        self.survivedPathLoss = survivedPathLoss
        self.udp = udp
    }
}
