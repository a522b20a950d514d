import Gateway
import Metrics

/// The gateway's Prometheus metrics (through swift-metrics).
struct GatewayMetrics: Sendable {
    let mode: String
    let active: Gauge
    let refusedAtLimit: Counter

    init(mode: String) {
        self.mode = mode
        active = Gauge(label: "edgepool_gateway_active_connections", dimensions: [("mode", mode)])
        refusedAtLimit = Counter(label: "edgepool_gateway_connection_limit_refusals_total", dimensions: [("mode", mode)])
    }

    func record(_ record: ConnectionRecord) {
        Counter(label: "edgepool_gateway_connections_total", dimensions: [("mode", mode), ("outcome", record.outcome)]).increment()
        Counter(label: "edgepool_gateway_client_transport_total", dimensions: [("mode", mode), ("transport", record.client.transport.rawValue)]).increment()
        if let upstream = record.upstream {
            Counter(label: "edgepool_gateway_upstream_transport_total", dimensions: [("mode", mode), ("transport", upstream.transport.rawValue)]).increment()
        }
        Counter(label: "edgepool_gateway_bytes_total", dimensions: [("mode", mode), ("direction", "from_client")]).increment(by: Int64(clamping: record.client.bytesIn))
        Counter(label: "edgepool_gateway_bytes_total", dimensions: [("mode", mode), ("direction", "to_client")]).increment(by: Int64(clamping: record.upstream?.bytesIn ?? 0))
        for (name, side) in [("client", record.client), ("upstream", record.upstream)] {
            guard let side, side.transport == .mptcp else { continue }
            Recorder(label: "edgepool_gateway_mptcp_subflows_max", dimensions: [("mode", mode), ("side", name)]).record(side.subflowsMax)
            var additional: UInt64 = 0
            for subflow in side.subflows ?? [] where !subflow.initial { additional += subflow.bytesAcked + subflow.bytesReceived }
            Counter(label: "edgepool_gateway_additional_subflow_bytes_total", dimensions: [("mode", mode), ("side", name)]).increment(by: Int64(clamping: additional))
            if side.subflowsLost > 0 {
                Counter(label: "edgepool_gateway_subflows_lost_total", dimensions: [("mode", mode), ("side", name)]).increment(by: side.subflowsLost)
            }
        }
        if record.survivedPathLoss {
            Counter(label: "edgepool_gateway_survived_path_loss_total", dimensions: [("mode", mode)]).increment()
        }
        Timer(label: "edgepool_gateway_connection_duration_seconds", dimensions: [("mode", mode)]).recordNanoseconds(Int64(record.durationSeconds * 1e9))
    }

    func handshakeFailure(_ reason: String) {
        Counter(label: "edgepool_gateway_handshake_failures_total", dimensions: [("mode", mode), ("reason", reason)]).increment()
    }
}
