import Gateway
import NIOCore
import NIOPosix
import NIOSSL
import RSerPool
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

/// Why an upstream connection was not made, with the answer each protocol gives.
struct UpstreamError: Error, CustomStringConvertible {
    enum Kind: String { case refusedByPolicy = "refused", unresolvable, refused = "connection-refused", unreachable, timeout, other }
    var kind: Kind
    var detail: String
    /// The reply an exit gateway sent, passed on as it is.
    var exitReply: SOCKSReplyCode?

    init(kind: Kind, detail: String, exitReply: SOCKSReplyCode? = nil) {
        self.kind = kind
        self.detail = detail
        self.exitReply = exitReply
    }

    var socksReply: SOCKSReplyCode {
        if let exitReply { return exitReply }
        return switch kind {
        case .refusedByPolicy: .notAllowedByRuleset
        case .unresolvable, .unreachable, .timeout: .hostUnreachable
        case .refused: .connectionRefused
        case .other: .generalFailure
        }
    }

    var outcome: String { kind == .refusedByPolicy ? "refused" : kind == .timeout ? "timeout" : "failed" }

    var description: String { detail }

    static func from(_ error: Error, target: String) -> UpstreamError {
        if let upstream = error as? UpstreamError { return upstream }
        if case ChannelError.connectTimeout = error { return UpstreamError(kind: .timeout, detail: "connect to \(target) timed out") }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return UpstreamError(kind: .refused, detail: "\(target) refused the connection")
            case ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL: return UpstreamError(kind: .unreachable, detail: "\(target) is unreachable (\(io))")
            case ETIMEDOUT: return UpstreamError(kind: .timeout, detail: "connect to \(target) timed out")
            default: break
            }
        }
        return UpstreamError(kind: .other, detail: "connect to \(target): \(error)")
    }
}

/// Opens upstream connections: checks the destination policy, resolves names off the event
/// loop, checks every resolved address again, and connects (TCP, or MPTCP on request) on the
/// client's event loop so the relay never crosses threads.
struct UpstreamConnector: Sendable {
    /// Resolved addresses tried for one destination.
    static let maximumAddressesTried = 4

    var transport: TransportProtocol
    var policy: DestinationPolicy?
    var connectTimeout: TimeAmount
    var limits: GatewayLimits

    func connect(to destination: ProxyDestination, on loop: EventLoop) -> EventLoopFuture<Channel> {
        if let policy, case .refused(let reason) = policy.check(destination) {
            return loop.makeFailedFuture(UpstreamError(kind: .refusedByPolicy, detail: "\(destination): \(reason)"))
        }
        let addresses: EventLoopFuture<[SocketAddress]>
        switch destination.host {
        case .address(let ip):
            addresses = loop.makeCompletedFuture { [try ip.socketAddress(port: Int(destination.port))] }
        case .name(let name):
            addresses = NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
                try Self.resolve(name, port: destination.port)
            }
        }
        return addresses.flatMap { candidates in
            var allowed = candidates
            if case .name(let name) = destination.host {
                do {
                    allowed = try allowedAddresses(candidates, resolvedFrom: name, port: destination.port)
                } catch {
                    return loop.makeFailedFuture(error)
                }
            }
            return connect(to: Array(allowed.prefix(Self.maximumAddressesTried)), target: destination.description, on: loop)
        }
    }

    /// The addresses `name` resolved to that the policy lets through (a name rule never opens
    /// a protected range: each address is checked again). Throws `refusedByPolicy`, with every
    /// reason, when none is left.
    func allowedAddresses(_ candidates: [SocketAddress], resolvedFrom name: String, port: UInt16) throws -> [SocketAddress] {
        guard let policy else { return candidates }
        var reasons: [String] = []
        let allowed = candidates.filter { address in
            guard let ip = IPAddress(address) else { return false }
            if case .refused(let reason) = policy.check(resolved: ip, name: name, port: port) {
                reasons.append(reason)
                return false
            }
            return true
        }
        if allowed.isEmpty {
            throw UpstreamError(kind: .refusedByPolicy, detail: "\(name):\(port): " + reasons.joined(separator: "; "))
        }
        return allowed
    }

    /// Tries the addresses in order until one accepts. With `tls` (the entry toward its exit)
    /// the channel speaks TLS 1.3 from the start; what is written before the handshake
    /// completes goes out after it.
    func connect(to addresses: [SocketAddress], target: String, on loop: EventLoop, tls: PairTLS? = nil) -> EventLoopFuture<Channel> {
        guard let first = addresses.first else {
            return loop.makeFailedFuture(UpstreamError(kind: .unresolvable, detail: "\(target): no address"))
        }
        let limits = limits
        return StreamTransport.connect(to: first, transport: transport, group: loop, timeout: connectTimeout) { channel in
            Self.initialize(channel, limits: limits, tls: tls)
        }.flatMapError { error in
            let failure = UpstreamError.from(error, target: target)
            guard addresses.count > 1 else { return loop.makeFailedFuture(failure) }
            return connect(to: Array(addresses.dropFirst()), target: target, on: loop, tls: tls)
        }
    }

    /// Sets up an upstream channel before it connects: the relay options, TLS when asked
    /// (below the counter, which counts the relayed bytes), and a byte counter.
    static func initialize(_ channel: Channel, limits: GatewayLimits, tls: PairTLS? = nil) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try prepare(channel, limits: limits)
            if let tls {
                try tls.addEntryHandlers(to: channel.pipeline.syncOperations)
                try channel.pipeline.syncOperations.addHandler(TLSHandshakeGuard(timeout: tls.handshakeTimeout))
            }
            try channel.pipeline.syncOperations.addHandler(ByteCounter())
        }
    }

    /// The first read buffer of a relayed channel; reads that fill it double the next one, up
    /// to the read size. NIO copies a channel's first buffer once (copy-on-write as it enters
    /// its pooled receive allocator) — ~3 % of the gateway's CPU under connection churn at this
    /// size — but 2 KiB cost the pair 15–20 % of its connections per core-second (a pair
    /// header with early data, a TLS record, in several reads), so it stays at 16 KiB.
    static let firstReadSize = 16 * 1024

    /// Options every relayed channel gets: half-close, bounded write buffer, bounded reads.
    static func prepare(_ channel: Channel, limits: GatewayLimits) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.allowRemoteHalfClosure, value: true)
        try options.setOption(.writeBufferWaterMark, value: .init(low: limits.bufferLimit / 2, high: limits.bufferLimit))
        try options.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: firstReadSize, maximum: limits.readSize))
        // One read per readiness event by default: backpressure (no more reads while the other
        // side's write buffer is above its limit) then holds after every read, so at most one
        // read comes on top of `bufferLimit`.
        try options.setOption(.maxMessagesPerRead, value: UInt(limits.readsPerEvent))
    }

    /// When neither side is MPTCP (plain TCP, or MPTCP that fell back): larger reads, which
    /// pay off there; with MPTCP on either side they hurt (reading from it or writing into it).
    static func usePlainReads(_ channels: Channel..., limits: GatewayLimits) {
        guard limits.plainReadSize != limits.readSize else { return }
        for channel in channels {
            try? channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: firstReadSize, maximum: limits.plainReadSize))
        }
    }

    static func resolve(_ name: String, port: UInt16) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, String(port), &hints, &result)
        guard status == 0, let result else {
            throw UpstreamError(kind: .unresolvable, detail: "cannot resolve \(name): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = result
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    let v4 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
                    addresses.append(SocketAddress(v4, host: name))
                case AF_INET6:
                    let v6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
                    addresses.append(SocketAddress(v6, host: name))
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        if addresses.isEmpty { throw UpstreamError(kind: .unresolvable, detail: "\(name) has no address") }
        var seen = Set<String>()
        return addresses.filter { seen.insert($0.description).inserted }
    }
}
