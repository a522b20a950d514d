import Gateway
import Logging
import NIOCore
import NIOPosix
import RSerPoolWire

/// The sockets of one SOCKS5 UDP association (RFC 1928 §7): a client-facing UDP socket on
/// the address the client reached the gateway at, and outward sockets (IPv4, IPv6; made
/// when first needed) that send to peers and take their answers. Everything runs on the
/// control connection's event loop and closes with it. Who may send and what goes back is
/// `SOCKS5UDPAssociation`'s to decide; this class adds the destination policy, name
/// resolution, counters and the idle timeout.
///
/// Datagrams are never queued: one that cannot be sent at once (a socket above its write
/// limit, too many names being resolved) is dropped and counted, as UDP would.
final class SOCKS5UDPRelay {
    /// Bytes one receive may take: the largest datagram plus a header.
    static let receiveSize = 65_536 + SOCKS5UDPHeader.maximumLength
    /// Datagrams whose destination name is being resolved at once; more are dropped.
    static let maximumPendingResolutions = 16
    /// Names kept resolved per association, and for how long.
    static let maximumResolvedNames = 64
    static let resolvedNameLifetime: TimeAmount = .seconds(60)
    /// Queued bytes per UDP socket before datagrams are dropped.
    static let writeLimit = 256 * 1024
    /// Datagrams read per readiness event; what they produce goes out in one flush
    /// (`sendmmsg`) when the batch ends.
    static let datagramsPerRead: UInt = 16

    private enum Family: Hashable { case v4, v6 }

    private var rules: SOCKS5UDPAssociation
    private let connection: GatewayConnection
    private let gateway: GatewayContext
    private let loop: EventLoop
    private var clientFacing: Channel?
    private var outward: [Family: Channel] = [:]
    private var opening: [Family: EventLoopFuture<Channel>] = [:]
    private var names: [String: (addresses: [SocketAddress], expires: NIODeadline)] = [:]
    private var pendingResolutions = 0
    private var lastActivity: NIODeadline
    private var idleCheck: Scheduled<Void>?
    private var loggedDrops: Set<String> = []
    private var closed = false
    /// Channels written to during the current read batch, flushed when it ends.
    private var unflushed: [Channel] = []
    private var inReadBatch = false

    private init(rules: SOCKS5UDPAssociation, connection: GatewayConnection, gateway: GatewayContext) {
        self.rules = rules
        self.connection = connection
        self.gateway = gateway
        loop = connection.client.eventLoop
        lastActivity = loop.now
    }

    /// Opens the client-facing socket on the control connection's local address; the future
    /// holds the relay address for the reply. The relay closes when the control connection does.
    static func open(for connection: GatewayConnection, requested: ProxyDestination, gateway: GatewayContext) -> EventLoopFuture<ProxyDestination> {
        let control = connection.client
        let loop = control.eventLoop
        guard let local = control.localAddress.flatMap(IPAddress.init)?.unmappedIPv4,
              let client = control.remoteAddress.flatMap(IPAddress.init)?.unmappedIPv4 else {
            return loop.makeFailedFuture(UpstreamError(kind: .other, detail: "the control connection has no IP addresses"))
        }
        let limit = gateway.configuration.limits.maximumUDPAssociations
        let admitted = gateway.udpAssociations.withLockedValue { open in
            guard open < limit else { return false }
            open += 1
            return true
        }
        guard admitted else {
            return loop.makeFailedFuture(UpstreamError(kind: .other, detail: "\(limit) UDP associations are open already (--max-udp-associations)"))
        }
        control.closeFuture.whenComplete { _ in gateway.udpAssociations.withLockedValue { $0 -= 1 } }
        let relay = SOCKS5UDPRelay(rules: SOCKS5UDPAssociation(client: client, requested: requested), connection: connection, gateway: gateway)
        let bindAddress: SocketAddress
        do { bindAddress = try local.socketAddress(port: 0) } catch { return loop.makeFailedFuture(error) }
        return relay.bind(bindAddress, side: .client).assumeIsolated().flatMapThrowing { channel in
            guard let port = channel.localAddress?.port else {
                channel.close(promise: nil)
                throw UpstreamError(kind: .other, detail: "the UDP relay socket has no port")
            }
            relay.clientFacing = channel
            let address = ProxyDestination(host: .address(local), port: UInt16(port))
            connection.udp = ConnectionRecord.UDPAssociation(relay: address.description)
            connection.destination = "udp \(address)"
            relay.scheduleIdleCheck()
            control.closeFuture.assumeIsolated().whenComplete { _ in relay.close() }
            return address
        }.nonisolated()
    }

    // MARK: sockets

    private func bind(_ address: SocketAddress, side: DatagramSide) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        return gateway.openDatagramSocket(address, loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(DatagramHandler(relay: bound.value, side: side))
            }
        }
    }

    /// The gateway's UDP sockets: bound with the relay's receive size, write limit and
    /// batch size (`GatewayContext.openDatagramSocket` unless a test gives its own).
    static let bootstrapSocket: GatewayContext.DatagramSocketOpener = { address, loop, initializer in
        DatagramBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: receiveSize))
            .channelOption(.writeBufferWaterMark, value: .init(low: writeLimit / 2, high: writeLimit))
            .channelOption(.maxMessagesPerRead, value: datagramsPerRead)
            .channelInitializer(initializer)
            .bind(to: address)
    }

    /// Opens the outward socket of a family (the first datagram to it waits; `send` uses an
    /// open one directly).
    private func outwardChannel(for family: Family) -> EventLoopFuture<Channel> {
        if let pending = opening[family] { return pending }
        let any: SocketAddress
        do { any = try (family == .v4 ? IPAddress.ipv4Any : IPAddress.ipv6Any).socketAddress(port: 0) } catch { return loop.makeFailedFuture(error) }
        let future = bind(any, side: .peers).assumeIsolated().map { [self] channel in
            opening[family] = nil
            if closed { channel.close(promise: nil) } else { outward[family] = channel }
            return channel
        }.nonisolated()
        opening[family] = future
        return future
    }

    // MARK: datagrams

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>, on side: DatagramSide) {
        guard !closed, let source = SOCKS5UDPAssociation.Endpoint(envelope.remoteAddress) else { return }
        inReadBatch = true
        lastActivity = loop.now
        switch side {
        case .client: fromClient(source, envelope.data)
        case .peers: fromPeer(source, envelope.data)
        }
    }

    private func fromClient(_ source: SOCKS5UDPAssociation.Endpoint, _ datagram: ByteBuffer) {
        switch rules.fromClient(source, datagram: datagram) {
        case .drop(let reason):
            drop(reason.label, "\(reason)", direction: "from_client")
        case .relay(let destination, let payload):
            let policy = gateway.connector.policy
            if let policy, case .refused(let why) = policy.check(destination) {
                drop("refused", "\(destination): \(why)", direction: "from_client")
                return
            }
            switch destination.host {
            case .address(let ip):
                guard let address = try? ip.socketAddress(port: Int(destination.port)) else {
                    drop("unreachable", "\(destination): not a usable address", direction: "from_client")
                    return
                }
                send(payload, to: address)
            case .name(let name):
                if let cached = names[name], cached.expires > loop.now {
                    send(payload, toFirstAllowedOf: cached.addresses, name: name, port: destination.port)
                    return
                }
                guard pendingResolutions < Self.maximumPendingResolutions else {
                    drop("resolution_backlog", "\(destination): \(Self.maximumPendingResolutions) names already being resolved", direction: "from_client")
                    return
                }
                pendingResolutions += 1
                let port = destination.port
                NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
                    try UpstreamConnector.resolve(name, port: port)
                }.assumeIsolated().whenComplete { [self] result in
                    pendingResolutions -= 1
                    guard !closed else { return }
                    switch result {
                    case .success(let addresses):
                        if names.count >= Self.maximumResolvedNames { names.removeAll() }
                        names[name] = (addresses, loop.now + Self.resolvedNameLifetime)
                        send(payload, toFirstAllowedOf: addresses, name: name, port: port)
                    case .failure(let error):
                        drop("unresolvable", "\(destination): \(error)", direction: "from_client")
                    }
                }
            }
        }
    }

    private func send(_ payload: ByteBuffer, toFirstAllowedOf addresses: [SocketAddress], name: String, port: UInt16) {
        do {
            guard let first = try gateway.connector.allowedAddresses(addresses, resolvedFrom: name, port: port).first else { return }
            send(payload, to: first)
        } catch {
            drop("refused", "\(error)", direction: "from_client")
        }
    }

    private func send(_ payload: ByteBuffer, to address: SocketAddress) {
        guard let peer = SOCKS5UDPAssociation.Endpoint(address) else { return }
        let family: Family = address.protocol == .inet6 ? .v6 : .v4
        if let channel = outward[family] {
            send(payload, to: address, peer: peer, on: channel)
            return
        }
        outwardChannel(for: family).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard !closed else { return }
                send(payload, to: address, peer: peer, on: channel)
            case .failure(let error):
                drop("socket", "cannot open an outward UDP socket: \(error)", direction: "from_client")
            }
        }
    }

    private func send(_ payload: ByteBuffer, to address: SocketAddress, peer: SOCKS5UDPAssociation.Endpoint, on channel: Channel) {
        guard channel.isWritable else {
            drop("congested", "outward socket above its write limit", direction: "from_client")
            return
        }
        rules.sent(to: peer)
        connection.udp?.datagramsFromClient += 1
        connection.udp?.bytesFromClient += UInt64(payload.readableBytes)
        connection.udp?.peers = rules.peerCount
        gateway.metrics.udpRelayedFromClient.increment()
        // A copy the size of the payload: the receive buffer (the largest datagram) goes back
        // to SwiftNIO's pool at once instead of waiting for this write.
        var copy = channel.allocator.buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        write(AddressedEnvelope(remoteAddress: address, data: copy), on: channel)
    }

    /// Inside a read batch the write waits for the batch's end (one flush, `sendmmsg`);
    /// outside one (after a name was resolved) it goes at once.
    private func write(_ envelope: AddressedEnvelope<ByteBuffer>, on channel: Channel) {
        if inReadBatch {
            channel.write(envelope, promise: nil)
            if !unflushed.contains(where: { $0 === channel }) { unflushed.append(channel) }
        } else {
            channel.writeAndFlush(envelope, promise: nil)
        }
    }

    /// A read batch ended: flush what it produced.
    fileprivate func readBatchEnded() {
        inReadBatch = false
        for channel in unflushed { channel.flush() }
        unflushed.removeAll(keepingCapacity: true)
    }

    private func fromPeer(_ source: SOCKS5UDPAssociation.Endpoint, _ payload: ByteBuffer) {
        let size = payload.readableBytes
        switch rules.fromPeer(source, payload: payload) {
        case .drop(let reason):
            drop(reason.label, "\(reason)", direction: "to_client")
        case .deliver(let client, let datagram):
            guard let channel = clientFacing, let address = try? client.address.socketAddress(port: Int(client.port)) else { return }
            guard channel.isWritable else {
                drop("congested", "client-facing socket above its write limit", direction: "to_client")
                return
            }
            connection.udp?.datagramsToClient += 1
            connection.udp?.bytesToClient += UInt64(size)
            gateway.metrics.udpRelayedToClient.increment()
            write(AddressedEnvelope(remoteAddress: address, data: datagram), on: channel)
        }
    }

    /// Counts a dropped datagram; the first drop of each kind per association is logged.
    private func drop(_ label: String, _ detail: String, direction: String) {
        connection.udp?.datagramsDropped += 1
        gateway.metrics.udpDropped(direction: direction, outcome: label)
        if loggedDrops.insert(label).inserted {
            gateway.logger.info("UDP datagram dropped", metadata: ["id": "\(connection.id)", "reason": "\(label)", "detail": "\(detail)",
                                                                  "note": "further drops of this kind on this association are only counted"])
        }
    }

    // MARK: lifetime

    /// Checks for datagrams a few times per idle timeout; closes the control connection
    /// (and with it the association) when none came either way for that long.
    private func scheduleIdleCheck() {
        let timeout = gateway.configuration.limits.idleTimeout
        let every = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, TimeAmount.milliseconds(100).nanoseconds))
        idleCheck = loop.assumeIsolated().scheduleTask(in: every) { [self] in
            guard !closed else { return }
            if loop.now - lastActivity > timeout {
                connection.fail("timeout", "UDP association idle for longer than \(timeout)")
                connection.client.close(promise: nil)
            } else {
                scheduleIdleCheck()
            }
        }
    }

    private func close() {
        guard !closed else { return }
        closed = true
        idleCheck?.cancel()
        idleCheck = nil
        clientFacing?.close(promise: nil)
        for channel in outward.values { channel.close(promise: nil) }
        clientFacing = nil
        outward = [:]
        unflushed = []
    }
}

private enum DatagramSide { case client, peers }

/// Hands a UDP socket's datagrams to its relay.
private final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let relay: SOCKS5UDPRelay
    private let side: DatagramSide

    init(relay: SOCKS5UDPRelay, side: DatagramSide) {
        self.relay = relay
        self.side = side
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.received(unwrapInboundIn(data), on: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        relay.readBatchEnded()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors (port unreachable) surface here on Linux; UDP carries on.
    }
}
