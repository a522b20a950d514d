import Foundation

/// What an operator wants to know from a gateway's per-connection log: the figures the
/// smartphone MPTCP studies had to reconstruct from packet traces.
public struct GatewayStatistics: Codable, Hashable, Sendable {
    public var connections = 0
    public var outcomes: [String: Int] = [:]
    /// Client side: real MPTCP, MPTCP that fell back, plain TCP.
    public var clientTransport: [String: Int] = [:]
    /// Upstream side, same categories.
    public var upstreamTransport: [String: Int] = [:]
    /// MPTCP connections (either side) by the most subflows open at once: "1", "2", "3", "4+".
    public var subflowCount: [String: Int] = [:]
    public var bytesFromClients: UInt64 = 0
    public var bytesToClients: UInt64 = 0
    /// Bytes on MPTCP subflows with per-subflow detail, and the part on non-initial subflows.
    public var subflowBytes: UInt64 = 0
    public var additionalSubflowBytes: UInt64 = 0
    public var connectionsWithSubflowLoss = 0
    public var survivedPathLoss = 0
    public var medianDurationSeconds = 0.0
    public var p95DurationSeconds = 0.0
    /// SOCKS5 UDP associations and what they carried (payload bytes).
    public var udpAssociations = 0
    public var udpDatagramsFromClients: UInt64 = 0
    public var udpBytesFromClients: UInt64 = 0
    public var udpDatagramsToClients: UInt64 = 0
    public var udpBytesToClients: UInt64 = 0
    public var udpDatagramsDropped: UInt64 = 0

    public init() {}

    public init(_ records: some Sequence<ConnectionRecord>) {
        var durations: [Double] = []
        for record in records {
            connections += 1
            outcomes[record.outcome, default: 0] += 1
            clientTransport[record.client.transport.rawValue, default: 0] += 1
            if let upstream = record.upstream { upstreamTransport[upstream.transport.rawValue, default: 0] += 1 }
            bytesFromClients += record.client.bytesIn
            bytesToClients += record.upstream?.bytesIn ?? 0
            durations.append(record.durationSeconds)
            var lostSubflow = false
            for side in [record.client] + (record.upstream.map { [$0] } ?? []) where side.transport == .mptcp {
                let count = max(side.subflowsMax, 1)
                subflowCount[count >= 4 ? "4+" : "\(count)", default: 0] += 1
                for subflow in side.subflows ?? [] {
                    let bytes = subflow.bytesAcked + subflow.bytesReceived
                    subflowBytes += bytes
                    if !subflow.initial { additionalSubflowBytes += bytes }
                }
                if side.subflowsLost > 0 { lostSubflow = true }
            }
            if lostSubflow { connectionsWithSubflowLoss += 1 }
            if record.survivedPathLoss { survivedPathLoss += 1 }
            if let udp = record.udp {
                udpAssociations += 1
                udpDatagramsFromClients += udp.datagramsFromClient
                udpBytesFromClients += udp.bytesFromClient
                udpDatagramsToClients += udp.datagramsToClient
                udpBytesToClients += udp.bytesToClient
                udpDatagramsDropped += udp.datagramsDropped
            }
        }
        durations.sort()
        if !durations.isEmpty {
            medianDurationSeconds = durations[durations.count / 2]
            p95DurationSeconds = durations[min(durations.count - 1, Int(Double(durations.count) * 0.95))]
        }
    }

    /// A plain-text report.
    public var report: String {
        func share(_ part: Int, of whole: Int) -> String {
            whole == 0 ? "–" : String(format: "%5.1f %%", 100 * Double(part) / Double(whole))
        }
        func table(_ title: String, _ counts: [String: Int], order: [String]) -> [String] {
            let total = counts.values.reduce(0, +)
            var lines = ["\(title) (\(total))"]
            for key in order + counts.keys.filter({ !order.contains($0) }).sorted() where counts[key] != nil {
                lines.append("  \(key.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(counts[key]!).leftPadded(8))  \(share(counts[key]!, of: total))")
            }
            return lines
        }
        var lines = ["connections: \(connections)"]
        lines += table("outcome", outcomes, order: ["ok", "refused", "failed", "timeout", "drained"])
        lines += table("client side", clientTransport, order: ["mptcp", "fallback", "tcp"])
        lines += table("upstream side", upstreamTransport, order: ["mptcp", "fallback", "tcp"])
        lines += table("MPTCP connections by subflows open at once", subflowCount, order: ["1", "2", "3", "4+"])
        let additional = subflowBytes == 0 ? "– (no per-subflow detail)" :
            String(format: "%.1f %% of %@ bytes", 100 * Double(additionalSubflowBytes) / Double(subflowBytes), "\(subflowBytes)")
        lines.append("bytes on additional subflows: \(additional)")
        lines.append("connections that lost a subflow: \(connectionsWithSubflowLoss); survived the path loss: \(survivedPathLoss)")
        lines.append("bytes from clients: \(bytesFromClients), to clients: \(bytesToClients)")
        if udpAssociations > 0 {
            lines.append("UDP associations: \(udpAssociations); datagrams from clients: \(udpDatagramsFromClients) (\(udpBytesFromClients) bytes), "
                         + "to clients: \(udpDatagramsToClients) (\(udpBytesToClients) bytes), dropped: \(udpDatagramsDropped)")
        }
        lines.append(String(format: "duration: median %.3f s, 95th percentile %.3f s", medianDurationSeconds, p95DurationSeconds))
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
