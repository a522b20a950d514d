import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RSerPool
import RSerPoolCore
import RSerPoolWire

/// What every connection of one gateway shares: configuration, upstream connector, the
/// registry of open connections, telemetry sinks, and the mode's upstream state (pair
/// secret and replay table, backend rotation, pool user).
final class GatewayContext: Sendable {
    /// Where a connection's upstream goes, decided once from the mode.
    enum UpstreamRoute: Sendable {
        /// To the destination the client names (SOCKS5, HTTP proxy, the exit), checked
        /// against the destination rules.
        case direct
        /// Over MPTCP to the exit gateway with the pair header (the entry); `forward`: every
        /// client to that destination, else the one each SOCKS5 client names.
        /// `tls`: the encrypted pair (TLS 1.3 toward the exit).
        case exit(SocketAddress, PairSecret, forward: ProxyDestination?, tls: PairTLS?)
        /// To a backend of the static list, round robin, next on failure.
        case backends([SocketAddress])
        /// To a PE of the pool chosen by its policy (the gateway is a pool user).
        case pool(PoolHandle, PoolUser)

        /// The client's own destination travels to the exit, which answers with a status
        /// byte that SOCKS5 must wait for to report the real outcome.
        var carriesToExit: Bool { if case .exit = self { true } else { false } }
    }

    /// Opens a UDP socket bound to an address, its pipeline set up by the initializer.
    typealias DatagramSocketOpener = @Sendable (SocketAddress, EventLoop, @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel>

    let configuration: GatewayConfiguration
    let route: UpstreamRoute
    /// The SOCKS5 UDP relay's sockets (`DatagramBootstrap`; EmbeddedChannels in tests).
    let openDatagramSocket: DatagramSocketOpener
    let logger: Logger
    let metrics: GatewayMetrics
    let registry = ConnectionRegistry()
    let connector: UpstreamConnector
    let connectionLog: ConnectionLog?
    /// Held backend connections (reverse mode with static backends and `preconnect` > 0).
    let preconnector: UpstreamPreconnector?
    /// The idle timeout's sweep of each event loop.
    private let idleSweeps: [ObjectIdentifier: NIOLoopBoundBox<IdleSweep>]
    /// SOCKS5 UDP associations open now (bounded by `limits.maximumUDPAssociations`).
    let udpAssociations = NIOLockedValueBox(0)
    /// Failed authentications per source address (password guessers are blocked for a while).
    private let authenticationFailures: NIOLockedValueBox<FailureLimiter<IPAddress>>
    /// One log line per kind of refusal per interval.
    private let refusalLogs: NIOLockedValueBox<LogThrottle<String>>
    private let replayGuard = NIOLockedValueBox(PairReplayGuard())
    private let nextBackend = NIOLockedValueBox(0)
    private let finishedCallbacks = NIOLockedValueBox<[@Sendable (ConnectionRecord) -> Void]>([])

    init(configuration: GatewayConfiguration, logger: Logger, loops: [EventLoop],
         openDatagramSocket: @escaping DatagramSocketOpener = SOCKS5UDPRelay.bootstrapSocket) throws {
        self.configuration = configuration
        self.openDatagramSocket = openDatagramSocket
        self.logger = logger
        metrics = GatewayMetrics(mode: configuration.mode.name)
        let limits = configuration.limits
        authenticationFailures = NIOLockedValueBox(FailureLimiter(.init(
            maximumFailures: limits.authenticationFailuresPerSource, window: limits.authenticationFailureWindow,
            blockDuration: limits.authenticationBlockDuration, maximumKeys: limits.authenticationTrackedSources)))
        refusalLogs = NIOLockedValueBox(LogThrottle(interval: limits.refusalLogInterval))
        idleSweeps = Dictionary(uniqueKeysWithValues: loops.map { loop in
            (ObjectIdentifier(loop), NIOLoopBoundBox.makeBoxSendingValue(IdleSweep(loop: loop, timeout: limits.idleTimeout), eventLoop: loop))
        })
        switch configuration.mode {
        case .socks5, .httpProxy, .exit:
            route = .direct
        case .entry(let exit, let forward):
            guard let secret = configuration.pairSecret else { throw GatewayConfigurationError("an entry gateway needs the pair secret") }
            route = .exit(exit, secret, forward: forward, tls: configuration.pairTLS)
        case .reverse(.addresses(let backends)):
            route = .backends(backends)
        case .reverse(.pool(let handle, let registrars)):
            route = .pool(handle, PoolUser(registrars: registrars, logger: logger))
        }
        // A static backend list and the exit are the operator's own configuration; a pool's PEs
        // come from registrations and are checked per PE (`openBackend`).
        let policy: DestinationPolicy? = if case .direct = route { configuration.destinations } else { nil }
        connector = UpstreamConnector(transport: configuration.upstreamTransport, policy: policy,
                                      connectTimeout: configuration.limits.connectTimeout, limits: configuration.limits)
        connectionLog = try configuration.connectionLogPath.map(ConnectionLog.init(path:))
        switch route {
        case .backends(let backends) where configuration.preconnect > 0:
            preconnector = UpstreamPreconnector(loops: loops, perLoop: configuration.preconnect, backends: backends, connector: connector, logger: logger)
        case .exit(let exit, _, _, let tls) where configuration.preconnect > 0:
            // Held connections to the exit: a client's carried connection then starts with its
            // header at once — no MPTCP handshake, no TLS handshake across the WAN.
            preconnector = UpstreamPreconnector(loops: loops, perLoop: configuration.preconnect, backends: [exit], target: .exit(tls: tls),
                                                connector: connector, logger: logger)
        default:
            preconnector = nil
        }
    }

    /// The idle sweep of `loop` (call on that loop). A loop the gateway was not made with
    /// (none in practice) gets a sweep of its own for the caller.
    func idleSweep(on loop: EventLoop) -> IdleSweep {
        idleSweeps[ObjectIdentifier(loop)]?.value ?? IdleSweep(loop: loop, timeout: configuration.limits.idleTimeout)
    }

    /// The pool user of a reverse proxy on a pool.
    var poolUser: PoolUser? { if case .pool(_, let user) = route { user } else { nil } }

    /// Why a newly accepted client (its address, IPv4-mapped unwrapped) is closed at once, if it
    /// is: outside the client list, or blocked after failed authentications. (The metric label,
    /// the log text.)
    func refusal(ofClient ip: IPAddress?) -> (reason: String, text: String)? {
        guard let ip else { return nil }
        if !configuration.clients.admits(ip) { return ("not_allowed", "client \(ip) is not in the client access list (\(configuration.clients))") }
        // Without credentials nothing can fail to authenticate: no table to look in.
        if configuration.credentials != nil,
           authenticationFailures.withLockedValue({ $0.isBlocked(ConnectionRegistry.clientKey(ip), now: .now()) }) {
            return ("blocked", "client \(ip) is blocked after \(configuration.limits.authenticationFailuresPerSource) failed authentications")
        }
        return nil
    }

    /// Counts a failed authentication from `address` (under its client key: an IPv6 /64 counts
    /// as one source); logs (rate-limited) when it blocks the source.
    func authenticationFailed(from address: SocketAddress?) {
        metrics.authenticationFailure()
        guard let ip = address?.ipAddress.flatMap({ IPAddress($0)?.unmappedIPv4 }).map(ConnectionRegistry.clientKey) else { return }
        let blocked = authenticationFailures.withLockedValue { $0.recordFailure(ip, now: .now()) }
        if blocked {
            logRefusal("blocked", "a client address is blocked after repeated failed authentications",
                       ["client": "\(ip)", "failures": "\(configuration.limits.authenticationFailuresPerSource)",
                        "within": "\(configuration.limits.authenticationFailureWindow)", "for": "\(configuration.limits.authenticationBlockDuration)"])
        }
    }

    /// A warning for one kind of refusal, at most once per `refusalLogInterval`, with the count
    /// of the ones left out since.
    func logRefusal(_ kind: String, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        guard let suppressed = refusalLogs.withLockedValue({ $0.admit(kind, now: .now()) }) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
    }

    /// Observers of finished connections (tests, the stats endpoint).
    func onFinished(_ callback: @escaping @Sendable (ConnectionRecord) -> Void) {
        finishedCallbacks.withLockedValue { $0.append(callback) }
    }

    func finished(_ connection: GatewayConnection, _ addressless: ConnectionRecord) {
        registry.remove(connection.id)
        metrics.active.record(registry.count)
        metrics.record(addressless)
        let level: Logger.Level = addressless.outcome == "ok" ? .debug : .info
        let callbacks = finishedCallbacks.withLockedValue { $0 }
        // Addresses only for a record that leaves: the log file, a log line, an observer.
        guard connectionLog != nil || logger.logLevel <= level || !callbacks.isEmpty else { return }
        let record = connection.addingAddresses(to: addressless)
        connectionLog?.append(record)
        if logger.logLevel <= level {   // the metadata costs more than the record; build it only when logged
            var metadata: Logger.Metadata = [
                "id": "\(record.id)", "destination": "\(record.destination)", "outcome": "\(record.outcome)",
                "client": "\(record.client.remote)", "client_transport": "\(record.client.transport.rawValue)",
                "bytes_in": "\(record.client.bytesIn)", "bytes_out": "\(record.upstream?.bytesIn ?? 0)",
                "seconds": "\(String(format: "%.3f", record.durationSeconds))",
            ]
            if let error = record.error { metadata["error"] = "\(error)" }
            if record.client.transport == .mptcp { metadata["subflows_max"] = "\(record.client.subflowsMax)" }
            logger.log(level: level, "connection closed", metadata: metadata)
        }
        for callback in callbacks { callback(record) }
    }

    /// Runs `body` with the pair replay table under its lock.
    func withReplayGuard<T>(_ body: (inout PairReplayGuard) throws -> T) rethrows -> T {
        try replayGuard.withLockedValue(body)
    }

    func nextStaticBackend(_ count: Int) -> Int {
        nextBackend.withLockedValue { value in
            defer { value = (value + 1) % max(count, 1) }
            return value
        }
    }

    /// The upstream for a destination in this mode: a direct connection, or (entry) a
    /// connection to the exit carrying the pair header. `awaitExitStatus`: wait for the exit's
    /// status byte before succeeding (SOCKS on the entry must report the real outcome).
    func openUpstream(to destination: ProxyDestination, for connection: GatewayConnection,
                      awaitExitStatus: Bool) -> EventLoopFuture<Channel> {
        let loop = connection.client.eventLoop
        let bound = NIOLoopBound(connection, eventLoop: loop)
        connection.destination = destination.description
        let opened: EventLoopFuture<Channel>
        if case .exit(let exit, let secret, _, let tls) = route {
            let header = PairHeader(destination: destination, timeMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000),
                                    nonce: (0..<PairHeader.nonceLength).map { _ in UInt8.random(in: 0...255) })
            let connected: EventLoopFuture<Channel>
            if let held = heldConnection(on: loop) {
                _ = UpstreamHolds.release(from: held)   // the exit says nothing before the header
                connected = loop.makeSucceededFuture(held)
            } else {
                connected = connector.connect(to: [exit], target: "exit gateway \(exit.endpointText)", on: loop, tls: tls)
            }
            opened = connected.flatMap { channel in
                let reader = ExitStatusReader(connection: bound.value, awaitingPromise: awaitExitStatus ? loop.makePromise() : nil)
                let status = reader.promise?.futureResult
                do {
                    try UpstreamHolds.install(reader, on: channel)
                } catch {
                    return loop.makeFailedFuture(error)
                }
                channel.writeAndFlush(header.encoded(secret: secret), promise: nil)
                guard let status else { return loop.makeSucceededFuture(channel) }
                return status.map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
        } else {
            opened = connector.connect(to: destination, on: loop)
        }
        return opened.flatMapThrowing { channel in try self.attach(channel, to: bound.value) }
    }

    /// A connection the preconnector holds on `loop` (counted as used), or nil — counted as
    /// missed when there is a preconnector whose pool is empty.
    private func heldConnection(on loop: EventLoop) -> Channel? {
        guard let preconnector else { return nil }
        if let held = preconnector.take(on: loop) {
            metrics.preconnectedUsed.increment()
            return held
        }
        metrics.preconnectMissed.increment()
        return nil
    }

    private func attach(_ channel: Channel, to connection: GatewayConnection) throws -> Channel {
        let counter = try channel.pipeline.syncOperations.handler(type: ByteCounter.self)
        connection.attach(upstream: channel, counter: counter)
        if connection.isPlainTCP { UpstreamConnector.usePlainReads(connection.client, channel, limits: configuration.limits) }
        registry.setTokens(connection.id, connection.tokens)
        return channel
    }

    /// The upstream of a mode whose destination the client does not name: the entry's fixed
    /// forward destination, or a reverse proxy's backend.
    func openFixedUpstream(for connection: GatewayConnection) -> EventLoopFuture<Channel> {
        if case .exit(_, _, let forward?, _) = route { return openUpstream(to: forward, for: connection, awaitExitStatus: false) }
        return openBackend(for: connection)
    }

    /// Reverse mode: a backend from the static list (round robin, next on failure) or from
    /// the pool (its policy; a PE that does not accept is reported unreachable, the next tried).
    private func openBackend(for connection: GatewayConnection) -> EventLoopFuture<Channel> {
        let loop = connection.client.eventLoop
        let bound = NIOLoopBound(connection, eventLoop: loop)
        let opened: EventLoopFuture<(Channel, String)>
        switch route {
        case .direct, .exit:
            return loop.makeFailedFuture(UpstreamError(kind: .other, detail: "no fixed upstream in this mode"))
        case .backends(let addresses):
            if let held = heldConnection(on: loop) {
                let backend = held.remoteAddress?.endpointText ?? "-"
                connection.destination = backend
                opened = loop.makeSucceededFuture((held, backend))
            } else {
                let start = nextStaticBackend(addresses.count)
                let rotated = Array(addresses[start...] + addresses[..<start])
                let backend = rotated.first?.endpointText ?? "-"
                connection.destination = backend
                opened = connector.connect(to: rotated, target: "backend", on: loop).map { ($0, backend) }
            }
        case .pool(let handle, let poolUser):
            connection.destination = "pool \(handle)"
            let promise = loop.makePromise(of: (Channel, String).self)
            let limits = configuration.limits, transport = configuration.upstreamTransport
            let destinations = configuration.destinations
            promise.completeWithTask {
                // The pool user picks by policy, reports a PE that does not accept, tries the next.
                // Every PE's address passes the destination rules first: a registration must
                // not send the gateway into the operator's networks.
                do {
                    let connection = try await poolUser.connect(to: handle, attempts: limits.poolAttempts, transport: transport,
                                                                timeout: limits.connectTimeout, eventLoop: loop, refusal: { address in
                        guard let ip = address.ipAddress.flatMap(IPAddress.init), let port = address.port else { return "no IP address" }
                        if case .refused(let reason) = destinations.check(resolved: ip.unmappedIPv4, name: nil, port: UInt16(port)) { return reason }
                        return nil
                    }) { channel in
                        UpstreamConnector.initialize(channel, limits: limits)
                    }
                    let address = connection.channel.remoteAddress?.endpointText ?? "\(connection.element.userTransport)"
                    return (connection.channel, "pool \(handle) PE \(connection.element.identifier) \(address)")
                } catch {
                    throw UpstreamError(kind: .unreachable, detail: "\(error)")
                }
            }
            opened = promise.futureResult
        }
        return opened.hop(to: loop).flatMapThrowing { channel, destination in
            bound.value.destination = destination
            return try self.attach(channel, to: bound.value)
        }
    }
}
