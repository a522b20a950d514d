import ArgumentParser
import RSerPool

struct PoolElementCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pe",
        abstract: "Run a pool element (PE): a demo service (echo, discard, daytime) registered in a pool.",
        discussion: HelpText.reflow("""
        The PE starts its service, registers it with the first reachable registrar, answers
        keep-alives, re-registers periodically, and deregisters on SIGTERM/SIGINT. With a
        Least-Used policy its load is the number of open sessions / --max-sessions, re-registered
        whenever it changes.

        A proxy PE (--proxy HOST:PORT) registers an unmodified server instead — a legacy
        server farm becomes a pool without touching it: registered after --health-successes
        passed checks (TCP connections; HTTP GETs with --health-http PATH: 2xx or 3xx; or a
        command with --health-command: exit 0, the server's address and port in $1 and $2),
        deregistered after --health-failures failed ones. With a Least-Used policy it reports
        the server's load at every check: its established connections on this host over
        --load-connections N, or a figure from --load-url (a Prometheus metric named by
        --load-metric, else the body as one number) over --load-full.
        The registrar must accept the server's address from the proxy (the same host,
        --proxy-identity with TLS, or --accept-foreign-addresses).

        Examples:
          edgepool pe --pool EchoPool --service echo --policy rr
          edgepool pe --pool WebPool --proxy 192.0.2.80:80 --health-interval 500ms
          edgepool pe --pool DbPool --proxy 127.0.0.1:5432 --health-command 'pg_isready -h "$1" -p "$2"'
          edgepool pe --pool WebPool --proxy 127.0.0.1:8080 --policy lu --load-connections 100
          edgepool pe --pool CalcPool --policy plu --increment 0.1 --registrar 127.0.0.1:3863 --registrar 127.0.0.1:3864
        """)
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Registrar to register with; repeat for fallbacks. [default: 127.0.0.1:3863]", valueName: "host:port"))
    var registrar: [Endpoint] = []

    @Option(help: "The pool handle. [default: EchoPool]")
    var pool: String?

    @Option(help: "The service to offer: echo, discard or daytime. [default: echo]")
    var service: DemoService?

    @Option(help: ArgumentHelp("Where the service listens; 0.0.0.0 lets the registrar fill in the address it sees. [default: 127.0.0.1:0]", valueName: "host:port"))
    var listen: Endpoint?

    @Option(help: "Transport for ASAP and the service: mptcp (falls back to tcp) or tcp. [default: mptcp]")
    var transport: TransportProtocol?

    @Option(help: ArgumentHelp("PE identifier (decimal or 0x…); random if not given.", valueName: "id"))
    var identifier: String?

    @Option(help: "Pool policy: rr, wrr, rand, wrand, prio, lu, lud, plu, rlu, rplu, rlud, plud, rplud. [default: rr]")
    var policy: String?

    @Option(help: "Initial load, 0…1 (Least-Used policies). [default: 0]")
    var load: Double?

    @Option(help: "Load increment per request, 0…1 (Priority Least Used). [default: 0]")
    var increment: Double?

    @Option(help: "Load degradation per selection, 0…1 (… with Degradation). [default: 0]")
    var degradation: Double?

    @Option(help: "Weight (WRR, WRAND). [default: 1]")
    var weight: UInt32?

    @Option(help: "Priority (PRIO; higher wins). [default: 1]")
    var priority: UInt32?

    @Option(help: "Sessions that make 100 % load (Least-Used policies). [default: 10]")
    var maxSessions: Int?

    @Option(help: "Re-register this often. [default: 30s]")
    var reregistrationInterval: Duration?

    @Option(help: ArgumentHelp("HTTP address for /metrics (off unless given).", valueName: "host:port"))
    var status: Endpoint?

    @Option(help: "Run this many PEs (each its own service, identifier and registration) in this process.")
    var count: Int = 1

    @Flag(help: "Do not listen for registrars' adoption after a takeover (the PE then re-registers by itself).")
    var noTakeover = false

    @Option(help: ArgumentHelp("Also find registrars by their Server Announces on this group (e.g. 239.0.0.50:3863).", valueName: "group:port"))
    var announce: Endpoint?

    @Option(help: ArgumentHelp("Local address of the interface to hear announces on.", valueName: "address"))
    var announceInterface: String?

    @Option(help: ArgumentHelp("A proxy PE: register this unmodified server (not a demo service) while TCP connections to it succeed.", valueName: "host:port"))
    var proxy: Endpoint?

    @Option(help: "Proxy PE: time between health checks. [default: 1s]") var healthInterval: Duration?
    @Option(help: "Proxy PE: a connection not made within this time fails the check. [default: 500ms]") var healthTimeout: Duration?
    @Option(help: "Proxy PE: failed checks in a row that deregister the server. [default: 3]") var healthFailures: Int?
    @Option(help: "Proxy PE: passed checks in a row that register it (again). [default: 2]") var healthSuccesses: Int?
    @Option(help: ArgumentHelp("Proxy PE: check with an HTTP GET of this path (2xx or 3xx within --health-timeout passes), not a bare TCP connection.", valueName: "path"))
    var healthHttp: String?
    @Option(help: ArgumentHelp("Proxy PE: check by running this shell command; exit 0 within --health-timeout passes ($1, $2: the server's address and port).", valueName: "command"))
    var healthCommand: String?
    @Option(help: ArgumentHelp("Proxy PE, Least-Used policy: report the server's established TCP connections on this host over N as its load.", valueName: "n"))
    var loadConnections: Int?
    @Option(help: ArgumentHelp("Proxy PE, Least-Used policy: report a figure fetched from this http:// URL as the load (see --load-metric, --load-full).", valueName: "url"))
    var loadUrl: String?
    @Option(help: ArgumentHelp("The Prometheus metric of --load-url's answer to read (its samples summed); without it the answer is one number.", valueName: "name"))
    var loadMetric: String?
    @Option(help: ArgumentHelp("The --load-url figure that means 100 % load. [default: 1]", valueName: "value"))
    var loadFull: Double?

    @OptionGroup var tls: RegistrarTLSOptions

    @Option(help: ArgumentHelp("With TLS: a registrar certificate identity that may adopt this PE after a takeover; repeatable. [default: any the CA signed]", valueName: "name"))
    var registrarIdentity: [String] = []

    @OptionGroup var csp: ComponentStatusOptions

    func run() async throws {
        let settings = try flagSettings.merged(over: loadSettings(common.config, as: PoolElementSettings.self))
        Bootstrap.run(logLevel: try logLevel(common.logLevel, file: settings.logLevel))
        try await asValidation {
            try await PoolElementDaemon.run(settings, count: count, acceptsTakeover: !noTakeover, metrics: Bootstrap.metricsText)
        }
    }

    /// The settings the flags give (nil where a flag is absent).
    var flagSettings: PoolElementSettings {
        var settings = PoolElementSettings()
        settings.registrar = registrar.nonEmpty
        settings.pool = pool
        settings.service = service
        settings.listen = listen
        settings.transport = transport
        settings.identifier = identifier
        settings.policy = policy
        settings.load = load
        settings.increment = increment
        settings.degradation = degradation
        settings.weight = weight
        settings.priority = priority
        settings.maxSessions = maxSessions
        settings.reregistrationInterval = reregistrationInterval
        settings.status = status
        settings.announce = announce
        settings.announceInterface = announceInterface
        settings.proxy = proxy
        settings.healthInterval = healthInterval
        settings.healthTimeout = healthTimeout
        settings.healthFailures = healthFailures
        settings.healthSuccesses = healthSuccesses
        settings.healthHttp = healthHttp
        settings.healthCommand = healthCommand
        settings.loadConnections = loadConnections
        settings.loadUrl = loadUrl
        settings.loadMetric = loadMetric
        settings.loadFull = loadFull
        settings.tlsCa = tls.tlsCa
        settings.tlsCertificate = tls.tlsCertificate
        settings.tlsKey = tls.tlsKey
        settings.registrarIdentity = registrarIdentity.nonEmpty
        settings.csp = csp.csp
        settings.cspInterval = csp.cspInterval
        return settings
    }
}
