import ArgumentParser
import Foundation
import Gateway
import GatewayService
import NIOCore
import RSerPool

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "MPTCP↔TCP gateway: SOCKS5, HTTP proxy, reverse proxy, hybrid-access pair; per-connection MPTCP telemetry.",
        discussion: HelpText.reflow("""
        Listeners speak MPTCP and accept plain TCP clients too; upstream connections
        are plain TCP unless --upstream-transport mptcp (the entry→exit hop is MPTCP
        by default). Each connection is logged (--connection-log, JSON lines) with
        whether each side used MPTCP or fell back, its subflows (addresses and bytes
        where the gateway can read them: as root, through sock_diag), bytes each way
        and duration; `edgepool gateway stats LOG` summarises such a log.

        Destinations: loopback, private (10/8, 172.16/12, 192.168/16), shared
        (100.64/10), unique-local IPv6 (fc00::/7), link-local (incl.
        169.254.169.254), unspecified and multicast ranges are refused unless an
        address rule allows them (--allow 10.0.0.0/8, --allow 127.0.0.1/32:8080).
        --deny wins over --allow; --default-deny refuses what no --allow admits.

        Clients: SOCKS5, HTTP and entry listen on 127.0.0.1 by default. Beyond
        loopback they need --user or --allow-client CIDR, or they refuse to start
        (--open-proxy starts one anyway, with a warning). Five failed logins from
        one address within 60 s block it for 60 s.

          edgepool gateway socks --listen 0.0.0.0:1080 --allow-client 192.0.2.0/24 --connection-log conn.jsonl
          curl --socks5-hostname 127.0.0.1:1080 http://example.org/
          edgepool gateway http --listen 0.0.0.0:3128 --user alice:secret
          edgepool gateway reverse --listen 0.0.0.0:80 --pool WebPool
          edgepool gateway exit --listen 0.0.0.0:7000 --secret-file pair.key
          edgepool gateway entry --exit 192.0.2.1:7000 --secret-file pair.key
          edgepool gateway stats conn.jsonl
        """),
        subcommands: [SOCKSGatewayCommand.self, HTTPGatewayCommand.self, ReverseGatewayCommand.self,
                      EntryGatewayCommand.self, ExitGatewayCommand.self, GatewayStatsCommand.self]
    )
}

/// Options all gateway modes share.
struct GatewayOptions: ParsableArguments {
    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: ArgumentHelp("Listening address; repeatable.", valueName: "host:port"))
    var listen: [Endpoint] = []

    @Option(help: "Listener transport: mptcp (accepts TCP clients too) or tcp. [default: mptcp]")
    var listenTransport: TransportProtocol?

    @Option(help: "Upstream transport: tcp or mptcp. [default: tcp; mptcp for entry → exit]")
    var upstreamTransport: TransportProtocol?

    @Option(help: ArgumentHelp("Allow destinations: CIDR, IP, domain, *.domain or *, optionally :PORT or :LOW-HIGH; repeatable.", valueName: "rule"))
    var allow: [String] = []

    @Option(help: ArgumentHelp("Refuse destinations (same forms as --allow; deny wins); repeatable.", valueName: "rule"))
    var deny: [String] = []

    @Flag(help: "Refuse every destination no --allow rule admits.")
    var defaultDeny = false

    @Option(name: .customLong("allow-client"), help: ArgumentHelp("Accept clients only from this address or CIDR; repeatable. [default: any client that reaches the listener]", valueName: "cidr"))
    var allowClient: [String] = []

    @Flag(name: .customLong("open-proxy"), help: "Start even as an open proxy: listening beyond loopback with neither --user nor --allow-client (refused otherwise).")
    var openProxy = false

    @Option(help: ArgumentHelp("Require authentication; a user as NAME:PASSWORD; repeatable (SOCKS5 username/password, HTTP Basic).", valueName: "name:password"))
    var user: [String] = []

    @Option(help: "Most connections open at once; more are closed at accept (lowered to what the open-file limit holds). [default: 10000]")
    var maxConnections: Int?

    @Option(help: "Most connections open at once from one client (an IPv4 address, an IPv6 /64). [default: 1000]")
    var maxConnectionsPerClient: Int?

    @Option(help: "Time from accept to relaying (handshake + upstream connect). [default: 10s]")
    var handshakeTimeout: Duration?

    @Option(help: "Time to connect upstream. [default: 10s]")
    var connectTimeout: Duration?

    @Option(help: "Close a connection with no bytes either way for this long. [default: 300s]")
    var idleTimeout: Duration?

    @Option(help: "On SIGTERM/SIGINT, let connections finish for this long. [default: 30s]")
    var drainTimeout: Duration?

    @Option(help: "Bytes queued toward one side before reading from the other pauses. [default: 65536]")
    var bufferLimit: Int?

    @Option(help: "Largest single read when neither side is MPTCP; a client that never reads holds up to --buffer-limit plus this. Lower it to bound memory under many slow readers. [default: 1048576]")
    var readSize: Int?

    @Option(help: "Reads per readiness event (1–16). More can relay faster, but a client that never reads may then hold --buffer-limit plus this many reads. [default: 1]")
    var readsPerEvent: Int?

    @Option(help: ArgumentHelp("Per-connection log, JSON lines (- for standard output).", valueName: "file"))
    var connectionLog: String?

    @Option(help: "Sample MPTCP subflows this often; 0 turns it off. [default: 1s]")
    var telemetryInterval: Duration?

    @Option(help: ArgumentHelp("HTTP address for /metrics (off unless given).", valueName: "host:port"))
    var status: Endpoint?

    @Option(help: "Event-loop threads. [default: one per core]")
    var threads: Int?

    @Option(name: .customLong("path"), help: ArgumentHelp("Run EdgePool's path manager in the gateway for this namespace's MPTCP paths: a path as `edgepool paths run --path` takes it (IF=ADDR|auto|auto6[,backup][,noprobe][,rate=RATE]…); repeatable. Needs CAP_NET_ADMIN.", valueName: "path"))
    var paths: [String] = []

    @Option(help: ArgumentHelp("The path manager's probe target (ADDR:PORT; a closed port of the peer answers with a reset).", valueName: "address:port"))
    var probe: String?

    @Flag(name: .customLong("userspace-pm"), help: "The path manager on the kernel's userspace PM (subflows per connection), not endpoints.")
    var userspacePM = false

    /// The flags' settings laid over the configuration file's (keys of other modes refused).
    func settings(_ kind: GatewaySettings.Kind, _ modeFlags: (inout GatewaySettings) -> Void = { _ in }) throws -> GatewaySettings {
        let file = try common.config.map { path in try asValidation { try GatewaySettings.load(file: path, allowing: GatewaySettings.keys(for: kind)) } }
        var flags = GatewaySettings()
        flags.listen = listen.nonEmpty
        flags.listenTransport = listenTransport
        flags.upstreamTransport = upstreamTransport
        flags.allow = allow.nonEmpty
        flags.deny = deny.nonEmpty
        flags.defaultDeny = defaultDeny ? true : nil
        flags.allowClient = allowClient.nonEmpty
        flags.openProxy = openProxy ? true : nil
        flags.user = user.nonEmpty
        flags.maxConnections = maxConnections
        flags.maxConnectionsPerClient = maxConnectionsPerClient
        flags.handshakeTimeout = handshakeTimeout
        flags.connectTimeout = connectTimeout
        flags.idleTimeout = idleTimeout
        flags.drainTimeout = drainTimeout
        flags.bufferLimit = bufferLimit
        flags.readSize = readSize
        flags.readsPerEvent = readsPerEvent
        flags.connectionLog = connectionLog
        flags.telemetryInterval = telemetryInterval
        flags.status = status
        flags.threads = threads
        flags.path = paths.nonEmpty
        flags.probe = probe
        flags.userspacePm = userspacePM ? true : nil
        modeFlags(&flags)
        return flags.merged(over: file ?? GatewaySettings())
    }

    /// Runs a gateway of mode `kind` with `settings` until SIGTERM/SIGINT; prints the ready line.
    func run(_ kind: GatewaySettings.Kind, _ settings: GatewaySettings) async throws {
        let level = try logLevel(common.logLevel, file: settings.logLevel)
        if let threads = settings.threads { NIOSingletons.groupLoopCountSuggestion = threads }
        Bootstrap.run(logLevel: level)
        try await asValidation { try await GatewayDaemon.run(kind, settings, metrics: Bootstrap.metricsText) }
    }
}

struct SOCKSGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socks",
        abstract: "SOCKS5 server (RFC 1928 CONNECT and UDP ASSOCIATE; no-auth or RFC 1929 username/password). Default listen 127.0.0.1:1080.",
        discussion: HelpText.reflow("""
        IPv4, IPv6 and domain-name targets (resolved on the gateway), for CONNECT
        and for the datagrams of a UDP association. A UDP association takes
        datagrams only from the client's address (and one port), relays answers
        only from peers the client sent to, drops fragments (FRAG ≠ 0), checks
        every datagram's destination against --allow/--deny, and ends with its
        control connection (or after --idle-timeout without datagrams). BIND is
        answered "command not supported"; --no-udp answers UDP ASSOCIATE so too.
          edgepool gateway socks --listen 127.0.0.1:1080 --user alice:secret
          curl --socks5-hostname alice:secret@127.0.0.1:1080 http://example.org/
        """)
    )
    @OptionGroup var options: GatewayOptions

    @Flag(name: .customLong("no-udp"), help: "Answer UDP ASSOCIATE \"command not supported\" (config file: \"udp\": false).")
    var noUDP = false

    @Option(name: .customLong("max-udp-associations"),
            help: "UDP associations open at once; more are answered \"general failure\". Each active one holds up to ~200 KiB of receive buffers. [default: 1000]")
    var maxUDPAssociations: Int?

    func run() async throws {
        try await options.run(.socks, try options.settings(.socks) { settings in
            if noUDP { settings.udp = false }
            settings.maxUdpAssociations = maxUDPAssociations
        })
    }
}

struct HTTPGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "HTTP proxy: CONNECT tunnels and absolute-form HTTP/1.1 requests. Default listen 127.0.0.1:3128.",
        discussion: HelpText.reflow("""
        Keep-alive and chunked bodies pass through; hop-by-hop fields are removed;
        requests with conflicting Content-Length/Transfer-Encoding are refused
        (400). Answers say what failed: 400 bad request, 403 destination refused,
        407 authentication needed, 502 the origin could not be reached, 504 it did
        not answer in time.

        CONNECT reaches port 443 only, unless --connect-port adds ports or an
        --allow rule names the port (--allow git.example.org:22).
          edgepool gateway http --listen 127.0.0.1:3128
          curl -x http://127.0.0.1:3128 http://example.org/
        """)
    )
    @OptionGroup var options: GatewayOptions

    @Option(name: .customLong("connect-port"), help: ArgumentHelp("A port or LOW-HIGH range CONNECT may reach without a rule naming it; repeatable. [default: 443]", valueName: "port"))
    var connectPort: [String] = []

    func run() async throws {
        try await options.run(.http, try options.settings(.http) { $0.connectPorts = connectPort.nonEmpty })
    }
}

struct ReverseGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reverse",
        abstract: "Reverse proxy: MPTCP clients in, backends from a list or an RSerPool pool.",
        discussion: HelpText.reflow("""
        With --pool the gateway is a pool user: it resolves the handle through the
        registrars, picks a PE by the pool's policy, and reports a PE that does not
        accept (Endpoint Unreachable) before trying the next. The pool's view of
        health is the only one.
          edgepool gateway reverse --listen 0.0.0.0:8080 --backend 10.0.0.5:80 --backend 10.0.0.6:80
          edgepool gateway reverse --listen 0.0.0.0:8080 --pool WebPool --registrar 127.0.0.1:3863

        --preconnect N keeps N connections per event loop open to the --backend
        list ahead of the clients: a client then skips the upstream connect (a
        backend's round trip away; most of the gateway's own set-up on a LAN). The
        backends see those connections before the clients come; a held one is
        replaced after 30 s. Not with --pool: a PE is chosen per client by the
        pool's policy.
        """)
    )
    @OptionGroup var options: GatewayOptions

    @Option(help: ArgumentHelp("A backend; repeatable (round robin, next on failure).", valueName: "host:port"))
    var backend: [Endpoint] = []

    @Option(help: ArgumentHelp("Take backends from this RSerPool pool.", valueName: "handle"))
    var pool: String?

    @Option(help: ArgumentHelp("A registrar to resolve the pool with; repeatable. [default: 127.0.0.1:3863]", valueName: "host:port"))
    var registrar: [Endpoint] = []

    @Option(help: "Connections per event loop held open to the backends ahead of clients (0–64; --backend only). [default: 0]")
    var preconnect: Int?

    @Option(help: ArgumentHelp("--pool: talk to the registrars over TLS, trusting this CA (PEM).", valueName: "file"))
    var registrarTlsCa: String?

    @Option(help: ArgumentHelp("--pool: present this certificate chain to the registrars (PEM).", valueName: "file"))
    var registrarTlsCertificate: String?

    @Option(help: ArgumentHelp("The private key of --registrar-tls-certificate (PEM).", valueName: "file"))
    var registrarTlsKey: String?

    func run() async throws {
        try await options.run(.reverse, try options.settings(.reverse) { settings in
            settings.backends = backend.nonEmpty
            settings.pool = pool
            settings.registrars = registrar.nonEmpty
            settings.preconnect = preconnect
            settings.registrarTlsCa = registrarTlsCa
            settings.registrarTlsCertificate = registrarTlsCertificate
            settings.registrarTlsKey = registrarTlsKey
        })
    }
}

/// Reads the pair secret from a flag, a file, or the configuration.
struct PairSecretOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The pair's shared secret (at least 16 bytes; prefer --secret-file).", valueName: "text"))
    var secret: String?

    @Option(help: ArgumentHelp("A file holding the pair's shared secret (trailing newline ignored).", valueName: "file"))
    var secretFile: String?

    @Option(help: ArgumentHelp("Encrypt the pair: TLS 1.3 with this certificate chain (PEM); needs --tls-key and --tls-ca, on both gateways.", valueName: "file"))
    var tlsCertificate: String?

    @Option(help: ArgumentHelp("The private key of --tls-certificate (PEM).", valueName: "file"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("The CA the other gateway's certificate must chain to (PEM).", valueName: "file"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("Entry: the name the exit's certificate must carry (else its address). Exit: an entry identity it accepts; repeatable (else any the CA signed).", valueName: "name"))
    var peerIdentity: [String] = []

    func apply(to settings: inout GatewaySettings) {
        settings.secret = secret
        settings.secretFile = secretFile
        settings.tlsCertificate = tlsCertificate
        settings.tlsKey = tlsKey
        settings.tlsCa = tlsCa
        settings.peerIdentity = peerIdentity.nonEmpty
    }
}

struct EntryGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "entry",
        abstract: "Hybrid access, home end: carry legacy TCP clients over MPTCP to an exit gateway.",
        discussion: HelpText.reflow("""
        With --forward every client goes to that destination (the exit connects to
        it); without, the entry is a SOCKS5 server and each CONNECT target travels
        to the exit. Each carried connection starts with a header authenticated by
        the shared secret (HMAC-SHA256, time-stamped, replay-checked); client bytes
        follow without waiting. With --tls-certificate, --tls-key and --tls-ca every
        carried connection is TLS 1.3, both gateways authenticated by certificates of
        one CA (the first client bytes then wait one round trip for the handshake).
        --preconnect N holds N connections per event loop open to the exit (TLS
        handshake done): a client's connection then skips the WAN handshakes, one
        round trip (two with TLS); each held one is replaced after 5 s, before the
        exit's --handshake-timeout (keep it above 7.5 s; default 10 s).
          edgepool gateway entry --exit 192.0.2.1:7000 --secret-file pair.key
          edgepool gateway entry --listen 127.0.0.1:8080 --forward origin.example:80 --exit 192.0.2.1:7000 --secret-file pair.key
          edgepool gateway entry --exit 192.0.2.1:7000 --secret-file pair.key --tls-certificate entry.pem --tls-key entry.key --tls-ca ca.pem --peer-identity exit.example
        """)
    )
    @OptionGroup var options: GatewayOptions
    @OptionGroup var pair: PairSecretOptions

    @Option(help: ArgumentHelp("The exit gateway.", valueName: "host:port"))
    var exit: Endpoint?

    @Option(help: ArgumentHelp("Send every client to this destination (host:port, resolved at the exit).", valueName: "host:port"))
    var forward: String?

    @Option(help: "Connections per event loop held open to the exit ahead of clients (0–64). [default: 0]")
    var preconnect: Int?

    func run() async throws {
        try await options.run(.entry, try options.settings(.entry) { settings in
            pair.apply(to: &settings)
            settings.exit = exit
            settings.forward = forward
            settings.preconnect = preconnect
        })
    }
}

struct ExitGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit",
        abstract: "Hybrid access, network end: accept carried connections from entry gateways. Default listen 0.0.0.0:7000.",
        discussion: HelpText.reflow("""
        A connection whose header does not verify under the shared secret, is more
        than 30 s off, or repeats a nonce is closed without an answer. Destinations
        are checked like the SOCKS5 server's (--allow / --deny). With the TLS flags
        the exit speaks only TLS 1.3 and requires an entry certificate of the CA
        (--peer-identity: only those entries); an entry without TLS is refused.
          edgepool gateway exit --listen 0.0.0.0:7000 --secret-file pair.key --connection-log exit.jsonl
          edgepool gateway exit --secret-file pair.key --tls-certificate exit.pem --tls-key exit.key --tls-ca ca.pem --peer-identity entry.example
        """)
    )
    @OptionGroup var options: GatewayOptions
    @OptionGroup var pair: PairSecretOptions

    func run() async throws {
        try await options.run(.exit, try options.settings(.exit) { pair.apply(to: &$0) })
    }
}

struct GatewayStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarise a gateway's per-connection log: MPTCP use, fallbacks, subflows, path-loss survival.",
        discussion: HelpText.reflow("""
        Prints the share of connections by subflow count, the share that fell back
        to TCP, the share of bytes carried on additional subflows, and connections
        that survived the loss of a path.
          edgepool gateway stats conn.jsonl
          edgepool gateway stats --json conn.jsonl exit.jsonl
        """)
    )

    @Argument(help: ArgumentHelp("Connection logs written with --connection-log.", valueName: "file"))
    var logs: [String]

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let (records, unreadable) = try asValidation { try readConnectionLogs(paths: logs) }
        let statistics = GatewayStatistics(records)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(statistics), as: UTF8.self))
        } else {
            print(statistics.report)
        }
        if unreadable > 0 { FileHandle.standardError.write(Data("warning: \(unreadable) line(s) were not connection records\n".utf8)) }
    }
}
