import Gateway
import Metrics
import NIOConcurrencyHelpers

/// HELP texts of the gateway's metrics (see `MetricHelp`).
public let gatewayMetricHelp: [String: String] = [
    "edgepool_gateway_active_connections": "Connections open now.",
    "edgepool_gateway_connections_total": "Connections finished, by outcome.",
    "edgepool_gateway_connection_limit_refusals_total": "Clients closed at accept because the connection limit was reached.",
    "edgepool_gateway_clients_refused_total": "Clients closed at accept, by reason (not_allowed, blocked, per_client_limit).",
    "edgepool_gateway_authentication_failures_total": "Failed SOCKS5 and HTTP Basic logins.",
    "edgepool_gateway_handshake_failures_total": "Handshakes that failed, by reason.",
    "edgepool_gateway_client_transport_total": "Client sides by transport (mptcp, fallback, tcp).",
    "edgepool_gateway_upstream_transport_total": "Upstream sides by transport (mptcp, fallback, tcp).",
    "edgepool_gateway_bytes_total": "Bytes relayed, by direction.",
    "edgepool_gateway_mptcp_subflows_max": "Most subflows an MPTCP connection had open at once.",
    "edgepool_gateway_additional_subflow_bytes_total": "Bytes carried by subflows other than the first.",
    "edgepool_gateway_subflows_lost_total": "Subflows lost (vanished, or stuck in retransmission timeouts).",
    "edgepool_gateway_survived_path_loss_total": "Connections that lost a subflow and still ended cleanly.",
    "edgepool_gateway_connection_duration_seconds": "How long connections lasted.",
    "edgepool_gateway_preconnected_total": "Reverse proxy with --preconnect: held connections used, or clients that found none.",
    "edgepool_gateway_udp_datagrams_total": "SOCKS5 UDP datagrams, by direction and outcome.",
]

/// The gateway's Prometheus metrics (through swift-metrics). Handles are made once per label
/// set and kept: making one asks the metrics backend under its lock.
struct GatewayMetrics: Sendable {
    let mode: String
    let active: Gauge
    let refusedAtLimit: Counter
    /// Datagrams a SOCKS5 UDP association relayed, each way (made once: counted per datagram).
    let udpRelayedFromClient: Counter
    let udpRelayedToClient: Counter
    /// Reverse proxy with `--preconnect`: clients that found a held backend connection, and
    /// clients that found the pool empty and connected themselves.
    let preconnectedUsed: Counter
    let preconnectMissed: Counter
    private let counters = NIOLockedValueBox([String: Counter]())
    private let duration: Timer
    private let recordHandles: RecordHandles

    init(mode: String) {
        self.mode = mode
        active = Gauge(label: "edgepool_gateway_active_connections", dimensions: [("mode", mode)])
        refusedAtLimit = Counter(label: "edgepool_gateway_connection_limit_refusals_total", dimensions: [("mode", mode)])
        duration = Timer(label: "edgepool_gateway_connection_duration_seconds", dimensions: [("mode", mode)])
        recordHandles = RecordHandles(mode: mode)
        preconnectedUsed = Counter(label: "edgepool_gateway_preconnected_total", dimensions: [("mode", mode), ("outcome", "used")])
        preconnectMissed = Counter(label: "edgepool_gateway_preconnected_total", dimensions: [("mode", mode), ("outcome", "pool_empty")])
        udpRelayedFromClient = Counter(label: "edgepool_gateway_udp_datagrams_total", dimensions: [("mode", mode), ("direction", "from_client"), ("outcome", "relayed")])
        udpRelayedToClient = Counter(label: "edgepool_gateway_udp_datagrams_total", dimensions: [("mode", mode), ("direction", "to_client"), ("outcome", "relayed")])
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            cache[key] = counter
            return counter
        }
    }

    /// The handles `record` uses, made once for every label value a record can carry (a
    /// finished connection then costs no lookups, no locks and no string building).
    private struct RecordHandles: Sendable {
        let connections: [String: Counter]
        let clientTransport: [ConnectionRecord.Transport: Counter]
        let upstreamTransport: [ConnectionRecord.Transport: Counter]
        let bytesFromClient: Counter
        let bytesToClient: Counter
        /// Per side ("client", "upstream"): subflows max, additional-subflow bytes, subflows lost.
        let subflowsMax: [String: Recorder]
        let additionalSubflowBytes: [String: Counter]
        let subflowsLost: [String: Counter]
        let survivedPathLoss: Counter

        static let outcomes = ["ok", "refused", "failed", "timeout", "drained"]
        static let transports: [ConnectionRecord.Transport] = [.mptcp, .fallback, .tcp]

        init(mode: String) {
            func perOutcome() -> [String: Counter] {
                Dictionary(uniqueKeysWithValues: Self.outcomes.map { ($0, Counter(label: "edgepool_gateway_connections_total", dimensions: [("mode", mode), ("outcome", $0)])) })
            }
            func perTransport(_ label: String) -> [ConnectionRecord.Transport: Counter] {
                Dictionary(uniqueKeysWithValues: Self.transports.map { ($0, Counter(label: label, dimensions: [("mode", mode), ("transport", $0.rawValue)])) })
            }
            connections = perOutcome()
            clientTransport = perTransport("edgepool_gateway_client_transport_total")
            upstreamTransport = perTransport("edgepool_gateway_upstream_transport_total")
            bytesFromClient = Counter(label: "edgepool_gateway_bytes_total", dimensions: [("mode", mode), ("direction", "from_client")])
            bytesToClient = Counter(label: "edgepool_gateway_bytes_total", dimensions: [("mode", mode), ("direction", "to_client")])
            let sides = ["client", "upstream"]
            subflowsMax = Dictionary(uniqueKeysWithValues: sides.map { ($0, Recorder(label: "edgepool_gateway_mptcp_subflows_max", dimensions: [("mode", mode), ("side", $0)])) })
            additionalSubflowBytes = Dictionary(uniqueKeysWithValues: sides.map {
                ($0, Counter(label: "edgepool_gateway_additional_subflow_bytes_total", dimensions: [("mode", mode), ("side", $0)]))
            })
            subflowsLost = Dictionary(uniqueKeysWithValues: sides.map { ($0, Counter(label: "edgepool_gateway_subflows_lost_total", dimensions: [("mode", mode), ("side", $0)])) })
            survivedPathLoss = Counter(label: "edgepool_gateway_survived_path_loss_total", dimensions: [("mode", mode)])
        }
    }

    func record(_ record: ConnectionRecord) {
        let handles = recordHandles
        (handles.connections[record.outcome] ?? counter("edgepool_gateway_connections_total", [("mode", mode), ("outcome", record.outcome)])).increment()
        handles.clientTransport[record.client.transport]?.increment()
        if let upstream = record.upstream { handles.upstreamTransport[upstream.transport]?.increment() }
        handles.bytesFromClient.increment(by: Int64(clamping: record.client.bytesIn))
        handles.bytesToClient.increment(by: Int64(clamping: record.upstream?.bytesIn ?? 0))
        for (name, side) in [("client", record.client), ("upstream", record.upstream)] {
            guard let side, side.transport == .mptcp else { continue }
            handles.subflowsMax[name]?.record(side.subflowsMax)
            var additional: UInt64 = 0
            for subflow in side.subflows ?? [] where !subflow.initial { additional += subflow.bytesAcked + subflow.bytesReceived }
            handles.additionalSubflowBytes[name]?.increment(by: Int64(clamping: additional))
            if side.subflowsLost > 0 { handles.subflowsLost[name]?.increment(by: side.subflowsLost) }
        }
        if record.survivedPathLoss { handles.survivedPathLoss.increment() }
        duration.recordNanoseconds(Int64(record.durationSeconds * 1e9))
    }

    /// A datagram of a SOCKS5 UDP association that was dropped, and why.
    func udpDropped(direction: String, outcome: String) {
        counter("edgepool_gateway_udp_datagrams_total", [("mode", mode), ("direction", direction), ("outcome", outcome)]).increment()
    }

    /// A client closed at accept: "not_allowed" (outside the client list), "blocked" (too many
    /// failed authentications), "limit" is counted by `refusedAtLimit`.
    func clientRefused(_ reason: String) {
        counter("edgepool_gateway_clients_refused_total", [("mode", mode), ("reason", reason)]).increment()
    }

    func authenticationFailure() {
        counter("edgepool_gateway_authentication_failures_total", [("mode", mode)]).increment()
    }

    func handshakeFailure(_ reason: String) {
        counter("edgepool_gateway_handshake_failures_total", [("mode", mode), ("reason", reason)]).increment()
    }
}
