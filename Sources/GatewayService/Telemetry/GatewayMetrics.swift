import Gateway
import Metrics
import NIOConcurrencyHelpers

/// The gateway's Prometheus metrics (through swift-metrics). Handles are made once per label
/// set and kept: making one asks the metrics backend under its lock.
struct GatewayMetrics: Sendable {
    let mode: String
    let active: Gauge
    let refusedAtLimit: Counter
    private let counters = NIOLockedValueBox([String: Counter]())
    private let recorders = NIOLockedValueBox([String: Recorder]())
    private let duration: Timer

    init(mode: String) {
        self.mode = mode
        active = Gauge(label: "edgepool_gateway_active_connections", dimensions: [("mode", mode)])
        refusedAtLimit = Counter(label: "edgepool_gateway_connection_limit_refusals_total", dimensions: [("mode", mode)])
        duration = Timer(label: "edgepool_gateway_connection_duration_seconds", dimensions: [("mode", mode)])
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

    private func recorder(_ label: String, _ dimensions: [(String, String)]) -> Recorder {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return recorders.withLockedValue { cache in
            if let recorder = cache[key] { return recorder }
            let recorder = Recorder(label: label, dimensions: dimensions)
            cache[key] = recorder
            return recorder
        }
    }

    func record(_ record: ConnectionRecord) {
        counter("edgepool_gateway_connections_total", [("mode", mode), ("outcome", record.outcome)]).increment()
        counter("edgepool_gateway_client_transport_total", [("mode", mode), ("transport", record.client.transport.rawValue)]).increment()
        if let upstream = record.upstream {
            counter("edgepool_gateway_upstream_transport_total", [("mode", mode), ("transport", upstream.transport.rawValue)]).increment()
        }
        counter("edgepool_gateway_bytes_total", [("mode", mode), ("direction", "from_client")]).increment(by: Int64(clamping: record.client.bytesIn))
        counter("edgepool_gateway_bytes_total", [("mode", mode), ("direction", "to_client")]).increment(by: Int64(clamping: record.upstream?.bytesIn ?? 0))
        for (name, side) in [("client", record.client), ("upstream", record.upstream)] {
            guard let side, side.transport == .mptcp else { continue }
            recorder("edgepool_gateway_mptcp_subflows_max", [("mode", mode), ("side", name)]).record(side.subflowsMax)
            var additional: UInt64 = 0
            for subflow in side.subflows ?? [] where !subflow.initial { additional += subflow.bytesAcked + subflow.bytesReceived }
            counter("edgepool_gateway_additional_subflow_bytes_total", [("mode", mode), ("side", name)]).increment(by: Int64(clamping: additional))
            if side.subflowsLost > 0 {
                counter("edgepool_gateway_subflows_lost_total", [("mode", mode), ("side", name)]).increment(by: side.subflowsLost)
            }
        }
        if record.survivedPathLoss {
            counter("edgepool_gateway_survived_path_loss_total", [("mode", mode)]).increment()
        }
        duration.recordNanoseconds(Int64(record.durationSeconds * 1e9))
    }

    /// A datagram of a SOCKS5 UDP association: relayed, or why it was dropped.
    func udpDatagram(direction: String, outcome: String) {
        counter("edgepool_gateway_udp_datagrams_total", [("mode", mode), ("direction", direction), ("outcome", outcome)]).increment()
    }

    func handshakeFailure(_ reason: String) {
        counter("edgepool_gateway_handshake_failures_total", [("mode", mode), ("reason", reason)]).increment()
    }
}
