import Gateway
import NIOCore
import RSerPool
import RSerPoolWire

/// Everything a gateway process needs to know; the CLI builds it from flags and a file.
public struct GatewayConfiguration: Sendable {
    /// What the gateway does with a connection it accepts.
    public enum Mode: Sendable {
        /// A SOCKS5 server (RFC 1928; CONNECT, and UDP ASSOCIATE unless `udpRelay` is off).
        case socks5
        /// An HTTP proxy: CONNECT tunnels and absolute-form HTTP/1.1 requests.
        case httpProxy
        /// Every connection goes to a backend: from a fixed list (round robin) or chosen from an
        /// RSerPool pool by its policy (the gateway is then a pool user).
        case reverse(ReverseBackends)
        /// Hybrid access, client end: carry each accepted connection over MPTCP to the exit
        /// gateway. With a fixed `forward` destination the client speaks its own protocol;
        /// without one the entry is a SOCKS5 server and the CONNECT target travels to the exit.
        case entry(exit: SocketAddress, forward: ProxyDestination?)
        /// Hybrid access, network end: accept carried connections and connect on the client's behalf.
        case exit

        /// The client names the destination (SOCKS5, the HTTP proxy, an entry without a fixed
        /// destination): without authentication or a client list beyond loopback, an open proxy.
        public var clientChoosesDestination: Bool {
            switch self {
            case .socks5, .httpProxy, .entry(_, nil): true
            case .reverse, .entry, .exit: false
            }
        }

        public var name: String {
            switch self {
            case .socks5: "socks5"
            case .httpProxy: "http"
            case .reverse: "reverse"
            case .entry: "entry"
            case .exit: "exit"
            }
        }
    }

    public enum ReverseBackends: Sendable {
        case addresses([SocketAddress])
        /// Pool handle and the registrars to resolve it with.
        case pool(PoolHandle, RegistrarList)
    }

    public var mode: Mode
    /// Listening addresses.
    public var listen: [SocketAddress]
    /// Listeners are MPTCP (they accept plain TCP clients too) unless set to `.tcp`.
    public var listenTransport: TransportProtocol = .mptcp
    /// Upstream connections: plain TCP by default (MPTCP for the entry→exit hop).
    public var upstreamTransport: TransportProtocol
    public var destinations = DestinationPolicy()
    /// Which clients may connect (empty: any that reach the listener).
    public var clients = ClientAccessList()
    /// Start as an open proxy (a client-chosen-destination mode listening beyond loopback with
    /// neither `credentials` nor `clients`): refused unless set, and logged when set.
    public var openProxy = false
    /// HTTP proxy: ports a CONNECT reaches without an allow rule that names the port.
    public var tunnelPorts = DestinationPolicy.defaultTunnelPorts
    /// Accept only these users (SOCKS5 username/password, HTTP Proxy-Authorization Basic).
    public var credentials: ProxyCredentials?
    /// The entry/exit pair's shared secret.
    public var pairSecret: PairSecret?
    /// The entry/exit pair over TLS 1.3 (nil: the header is authenticated, the bytes are not
    /// encrypted).
    public var pairTLS: PairTLS?
    public var limits = GatewayLimits()
    /// Where the per-connection log goes (JSON lines); nil: nowhere, "-": standard output.
    public var connectionLogPath: String?
    /// How often MPTCP connections' subflows are sampled; zero turns sampling off.
    public var telemetryInterval: TimeAmount = .seconds(1)
    /// SOCKS5 UDP ASSOCIATE (socks5 mode only; an entry gateway carries TCP only).
    public var udpRelay = true
    /// Reverse mode with static backends, or an entry gateway: connections per event loop
    /// held open to the backends or the exit ahead of clients (0: connect when a client comes).
    public var preconnect = 0

    /// Settings this configuration's mode would ignore (each named as its flag), so that an
    /// operator is told instead of trusting a rule that does nothing.
    public var ignoredSettings: [String] {
        var ignored: [String] = []
        let rules = !destinations.allow.isEmpty || !destinations.deny.isEmpty || !destinations.defaultAllow
        switch mode {
        case .reverse(.addresses), .entry:
            if rules { ignored.append("--allow/--deny/--default-deny (the backends or the exit are your own configuration; the exit applies its rules)") }
        default:
            break
        }
        switch mode {
        case .reverse, .exit, .entry(_, .some):
            if credentials != nil { ignored.append("--user (only SOCKS5, HTTP and an entry without --forward authenticate clients)") }
        default:
            break
        }
        if case .httpProxy = mode {} else if tunnelPorts != DestinationPolicy.defaultTunnelPorts { ignored.append("--connect-port (HTTP proxy only)") }
        return ignored
    }

    public init(mode: Mode, listen: [SocketAddress]) {
        self.mode = mode
        self.listen = listen
        if case .entry = mode { upstreamTransport = .mptcp } else { upstreamTransport = .tcp }
    }
}

/// The gateway's bounds. Every number an attacker could push on has one.
public struct GatewayLimits: Sendable {
    /// Connections relayed or in handshake at once; more are closed at accept.
    public var maximumConnections = 10_000
    /// Connections from one client (an IPv4 address, an IPv6 /64) at once, so that one client
    /// cannot take every slot.
    public var maximumConnectionsPerClient = 1_000
    /// From accept until relaying (SOCKS5/HTTP head/pair header, plus the upstream connect).
    public var handshakeTimeout: TimeAmount = .seconds(10)
    public var connectTimeout: TimeAmount = .seconds(10)
    /// A relayed connection with no bytes either way for this long is closed.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// On SIGTERM, connections get this long to finish before they are closed.
    public var drainTimeout: TimeAmount = .seconds(30)
    /// Bytes queued toward one side before the gateway stops reading from the other
    /// (the write-buffer high-water mark; one read of at most `plainReadSize` may come on top).
    public var bufferLimit = 64 * 1024
    /// The largest single read on a connection with MPTCP on either side (larger reads made
    /// MPTCP→TCP and TCP→MPTCP relaying slower here; 256 KiB measured best).
    public var readSize = 256 * 1024
    /// The largest single read when neither side of a connection is MPTCP (plain TCP, or MPTCP
    /// that fell back): 1 MiB reads took TCP→TCP relaying from about 50 % to 80 % of the direct
    /// loopback rate; with MPTCP on either side they made it several times slower.
    public var plainReadSize = 1024 * 1024
    /// Reads per readiness event. SwiftNIO does not stop between them when the other side's
    /// buffer fills, so a client that never reads may hold `bufferLimit` plus this many reads.
    public var readsPerEvent = 1
    /// SOCKS5 UDP associations open at once (each also counts as a connection). An active
    /// association holds up to three receive buffers of the largest datagram (~200 KiB).
    public var maximumUDPAssociations = 1_000
    /// Backends of one pool tried for one connection in reverse mode.
    public var poolAttempts = 3
    /// Password guessing: this many failed authentications (SOCKS5 username/password, HTTP
    /// Basic) from one address within `authenticationFailureWindow` block that address for
    /// `authenticationBlockDuration` (its connections are closed at accept).
    public var authenticationFailuresPerSource = 5
    public var authenticationFailureWindow: TimeAmount = .seconds(60)
    public var authenticationBlockDuration: TimeAmount = .seconds(60)
    /// Source addresses whose failures are remembered at once (the idlest is forgotten first).
    public var authenticationTrackedSources = 4096
    /// One log line per kind of refusal (connection limit, client not allowed, blocked
    /// source) per this interval; the ones left out are counted in the next.
    public var refusalLogInterval: TimeAmount = .seconds(10)

    public init() {}
}
