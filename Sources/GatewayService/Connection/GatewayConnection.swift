import Foundation
import Gateway
import PathManager
import NIOCore

/// One accepted connection from accept to close: its two channels, what the kernel said
/// about them, the subflows seen, and how it ended. Lives on the client channel's event loop
/// (the upstream channel is created on the same loop).
final class GatewayConnection {
    enum Side: Sendable { case client, upstream }

    let id: UInt64
    let mode: String
    let startTime = Date()
    let client: Channel
    let clientCounter = ByteCounter()
    private(set) var clientInfo: MPTCPSocketInfo?
    private var clientTracker: SubflowTracker?

    private(set) var upstream: Channel?
    private var upstreamCounter: ByteCounter?
    private(set) var upstreamInfo: MPTCPSocketInfo?
    private var upstreamTracker: SubflowTracker?

    var destination = "-"
    /// What a SOCKS5 UDP association carried (kept up to date by its relay).
    var udp: ConnectionRecord.UDPAssociation?
    var user: String?
    private(set) var outcome = "ok"
    private(set) var error: String?
    private var relaying = false
    /// Closes the client if it has not reached relaying in time; cancelled when it does.
    var handshakeTimer: Scheduled<Void>?
    private var finished = false
    private let onFinish: (GatewayConnection, ConnectionRecord) -> Void

    /// Whether a side's socket was made as MPTCP; one that was not is plain TCP without asking
    /// the kernel (a connection setup then saves the socket-option reads).
    private let clientMayBeMPTCP: Bool
    private let upstreamMayBeMPTCP: Bool

    init(id: UInt64, mode: String, client: Channel, clientMayBeMPTCP: Bool = true, upstreamMayBeMPTCP: Bool = true,
         onFinish: @escaping (GatewayConnection, ConnectionRecord) -> Void) {
        self.id = id
        self.mode = mode
        self.client = client
        self.clientMayBeMPTCP = clientMayBeMPTCP
        self.upstreamMayBeMPTCP = upstreamMayBeMPTCP
        self.onFinish = onFinish
    }

    /// Reads the client socket's MPTCP state (call once the channel is active).
    func inspectClient() {
        let info = clientMayBeMPTCP ? MPTCPSocketInfo.read(client) : .plainTCP
        clientInfo = info
        if info.transport == .mptcp { clientTracker = SubflowTracker(initial: Self.key(client)) }
        clientTracker?.observeCount(info.openSubflows)
    }

    func attach(upstream channel: Channel, counter: ByteCounter) {
        upstream = channel
        upstreamCounter = counter
        let info = upstreamMayBeMPTCP ? MPTCPSocketInfo.read(channel) : .plainTCP
        upstreamInfo = info
        if info.transport == .mptcp { upstreamTracker = SubflowTracker(initial: Self.key(channel)) }
        upstreamTracker?.observeCount(info.openSubflows)
        channel.closeFuture.assumeIsolated().whenComplete { _ in self.finishIfClosed() }
    }

    /// Neither side is MPTCP (plain TCP, or MPTCP that fell back); false until both are known.
    var isPlainTCP: Bool {
        guard let client = clientInfo, let upstream = upstreamInfo else { return false }
        return client.transport != .mptcp && upstream.transport != .mptcp
    }

    func markRelaying() {
        relaying = true
        handshakeTimer?.cancel()
        handshakeTimer = nil
    }

    /// Records why the connection failed (the first reason wins) .
    func fail(_ outcome: String, _ error: String) {
        guard self.outcome == "ok" else { return }
        self.outcome = outcome
        self.error = error
    }

    /// Tokens of the MPTCP sides, for the subflow sampler.
    var tokens: [(Side, UInt32)] {
        var result: [(Side, UInt32)] = []
        if let token = clientInfo?.token { result.append((.client, token)) }
        if let token = upstreamInfo?.token { result.append((.upstream, token)) }
        return result
    }

    /// A sock_diag snapshot of one side's subflows (and a fresh subflow count).
    func observe(_ side: Side, subflows: [SockDiag.Subflow]) {
        let samples = subflows.map { SubflowTracker.Sample(key: .init(local: $0.local, remote: $0.remote), bytesAcked: $0.bytesAcked, bytesReceived: $0.bytesReceived, failing: $0.failing) }
        switch side {
        case .client: clientTracker?.observe(samples)
        case .upstream: upstreamTracker?.observe(samples)
        }
    }

    /// Re-reads the subflow counts (cheap: one getsockopt per MPTCP side).
    func sampleCounts() {
        if clientTracker != nil, client.isActive { clientTracker?.observeCount(MPTCPSocketInfo.read(client).openSubflows) }
        if upstreamTracker != nil, let upstream, upstream.isActive { upstreamTracker?.observeCount(MPTCPSocketInfo.read(upstream).openSubflows) }
    }

    /// Called when either channel closes; the record is made once both are closed (without
    /// addresses: see `addingAddresses(to:)`).
    func finishIfClosed() {
        guard !finished, !client.isActive, !(upstream?.isActive ?? false) else { return }
        finished = true
        if !relaying && outcome == "ok" { outcome = "failed"; error = error ?? "closed before relaying" }
        let survived = outcome == "ok" && ((clientTracker?.carriedDataAfterLoss ?? false) || (upstreamTracker?.carriedDataAfterLoss ?? false))
        let record = ConnectionRecord(
            id: id, mode: mode, start: startTime.timeIntervalSince1970, durationSeconds: Date().timeIntervalSince(startTime),
            destination: destination, user: user,
            client: Self.side(client, info: clientInfo, tracker: clientTracker, counter: clientCounter),
            upstream: upstream.map { Self.side($0, info: upstreamInfo, tracker: upstreamTracker, counter: upstreamCounter!) },
            outcome: outcome, error: error, survivedPathLoss: survived, udp: udp)
        onFinish(self, record)
    }

    private static func key(_ channel: Channel) -> SubflowTracker.Key {
        SubflowTracker.Key(local: channel.localAddress?.endpointText ?? "?", remote: channel.remoteAddress?.endpointText ?? "?")
    }

    /// The record's addresses (left empty by `finishIfClosed`: formatting four addresses costs
    /// more than the rest of the record, and most records only feed the metrics).
    func addingAddresses(to record: ConnectionRecord) -> ConnectionRecord {
        var record = record
        let client = Self.key(client)
        (record.client.local, record.client.remote) = (client.local, client.remote)
        if let upstream {
            let key = Self.key(upstream)
            record.upstream?.local = key.local
            record.upstream?.remote = key.remote
        }
        return record
    }

    private static func side(_ channel: Channel, info: MPTCPSocketInfo?, tracker: SubflowTracker?, counter: ByteCounter) -> ConnectionRecord.Side {
        var side = ConnectionRecord.Side(local: "", remote: "", transport: info?.transport ?? .tcp)
        side.bytesIn = counter.bytesRead
        if let tracker {
            side.subflowsMax = tracker.maximumOpen
            side.subflowsSeen = tracker.seen
            side.subflowsLost = tracker.lost
            let subflows = tracker.subflows
            side.subflows = subflows.isEmpty ? nil : subflows
        } else if side.transport != .tcp {
            side.subflowsMax = 1
            side.subflowsSeen = 1
        }
        return side
    }
}

extension SocketAddress {
    /// "10.0.0.1:80" / "[::1]:80", with IPv4-mapped IPv6 shown as IPv4 (as sock_diag does).
    var endpointText: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        if ip.hasPrefix("::ffff:"), !ip.dropFirst(7).contains(":") { return "\(ip.dropFirst(7)):\(port)" }
        return self.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
