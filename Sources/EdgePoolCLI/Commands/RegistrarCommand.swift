import ArgumentParser
import RSerPool

struct RegistrarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registrar",
        abstract: "Run a pool registrar (PR): keeps the handlespace, monitors PEs, answers handle resolutions.",
        discussion: HelpText.reflow("""
        PEs register over ASAP (MPTCP, falling back to TCP) and are probed with Endpoint
        Keep-Alives; one that does not answer, whose association closes, whose registration
        life runs out, or that PUs report unreachable too often, leaves the pool.

        Prometheus metrics and the handlespace (JSON) are served on --status:
          curl http://127.0.0.1:9090/metrics
          edgepool handlespace --status 127.0.0.1:9090

        Registrar redundancy (ENRP, RFC 5353): give each registrar an --enrp-listen address and
        its peers' addresses (--peer, repeatable; peers also learn of each other through peer
        lists). They replicate the handlespace, and when one falls silent (no Presence for
        --peer-max-time-last-heard, no reply for --peer-max-time-no-response) the others take
        over its PEs: the lowest identifier wins, and the PEs are told their new home.
          edgepool registrar --listen 127.0.0.1:3863 --enrp-listen 127.0.0.1:9901 --peer 127.0.0.1:9902
          edgepool registrar --listen 127.0.0.1:3864 --enrp-listen 127.0.0.1:9902 --peer 127.0.0.1:9901

        Trust (RFC 5355): with --tls-certificate and --tls-key, ASAP runs over TLS 1.3; with
        --tls-ca every PE and PU must present a certificate signed by that CA, and
        --authorize rules say which identity (the certificate's first DNS name, else its
        common name) may register in which pool — others are refused ("rejected for
        security reasons"). With ENRP, --peer-identity names the scope's registrars.
        SIGHUP reads the certificate files again. A registrar that listens beyond loopback
        without TLS says so; SSLKEYLOGFILE=FILE writes TLS secrets for Wireshark.
          edgepool registrar --listen 0.0.0.0:3864 --tls-certificate pr.pem --tls-key pr.key --tls-ca ca.pem --authorize edge-1=CalcAppPool
          edgepool pe --pool CalcAppPool --registrar 192.0.2.1:3864 --tls-ca ca.pem --tls-certificate edge-1.pem --tls-key edge-1.key

        Stops gracefully on SIGTERM or SIGINT.

        Example configuration file (JSON, every key optional, flags win):
          {"listen": ["0.0.0.0:3863", "[::]:3863"], "status": "127.0.0.1:9090",
           "keepAliveInterval": "5s", "keepAliveTimeout": "5s"}
        """)
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("This registrar's 32-bit identifier (decimal or 0x…); random if not given.", valueName: "id"))
    var identifier: String?

    @Option(name: .long, help: ArgumentHelp("ASAP listening address; repeat for several (IPv4, IPv6). [default: 0.0.0.0:3863]", valueName: "host:port"))
    var listen: [Endpoint] = []

    @Option(help: "Transport for ASAP: mptcp (falls back to tcp) or tcp. [default: mptcp]")
    var transport: TransportProtocol?

    @Option(help: ArgumentHelp("HTTP address for /metrics and /handlespace (off unless given).", valueName: "host:port"))
    var status: Endpoint?

    @Option(help: "Send an Endpoint Keep-Alive after this much silence from a PE. [default: 5s]")
    var keepAliveInterval: Duration?

    @Option(help: "Drop a PE that has not answered a Keep-Alive after this long. [default: 5s]")
    var keepAliveTimeout: Duration?

    @Option(help: "Drop a PE after this many Endpoint Unreachable reports. [default: 3]")
    var maxUnreachableReports: Int?

    @Option(help: "Longest accepted pool handle in bytes. [default: 32]")
    var maxHandleLength: Int?

    @Option(help: "Most PEs in the handlespace. [default: 1000000]")
    var maxPoolElements: Int?

    @Option(help: "Most PEs one association may register. [default: 10000]")
    var maxPoolElementsPerAssociation: Int?

    @Option(help: "Associations open at once; more are closed at accept (lowered to what the open-file limit holds). [default: 10000]")
    var maxAssociations: Int?

    @Option(help: "Associations open at once from one address. [default: 1000]")
    var maxAssociationsPerAddress: Int?

    @Option(help: "TLS handshakes under way at once; a connection accepted beyond is closed at once (a handshake unfinished after --tls-handshake-timeout is closed too). [default: 256]")
    var maxHandshakes: Int?

    @Option(help: "Work per second handled from one association, after a burst of 1000: a message is one unit plus one per KiB of its replies. Past it the registrar reads more slowly, drops nothing. 0: no limit. [default: 1000]")
    var messageRate: Double?

    @Option(help: "Close an association that sends nothing this long and has no PE registered over it. [default: 300s]")
    var idleTimeout: Duration?

    @Option(help: "Close an association whose message is begun and not finished within this time. [default: 10s]")
    var partialMessageTimeout: Duration?

    @Option(help: "Close an association that leaves its replies unread this long (256 KiB queued). [default: 30s]")
    var notReadingTimeout: Duration?

    @Flag(help: "Accept registrations naming addresses other than the one they come from (proxy PEs); off, such a registration is refused.")
    var acceptForeignAddresses = false

    @Option(help: ArgumentHelp("Multicast Server Announces to this group (e.g. 239.0.0.50:3863); off unless given.", valueName: "group:port"))
    var announce: Endpoint?

    @Option(help: ArgumentHelp("Local IPv4 address of the interface for announces.", valueName: "address"))
    var announceInterface: String?

    @Option(help: ArgumentHelp("Listen for peer registrars (ENRP) here; repeatable. Off unless given.", valueName: "host:port"))
    var enrpListen: [Endpoint] = []

    @Option(help: ArgumentHelp("A peer registrar's ENRP address; repeatable.", valueName: "host:port"))
    var peer: [Endpoint] = []

    @Option(help: ArgumentHelp("Also find peers by multicast Presence on this group (e.g. 239.0.0.51:9901); uses --announce-interface.", valueName: "group:port"))
    var enrpAnnounce: Endpoint?

    @Option(help: ArgumentHelp("Close the operation scope: accept ENRP only from these registrar identifiers (repeatable).", valueName: "id"))
    var allowedPeer: [String] = []

    @Option(help: "Send a Presence to every peer this often. [default: 2400ms]")
    var peerHeartbeatInterval: Duration?

    @Option(help: "Ask a peer silent this long for a reply. [default: 5s]")
    var peerMaxTimeLastHeard: Duration?

    @Option(help: "Take over a peer that has not replied after this long. [default: 5s]")
    var peerMaxTimeNoResponse: Duration?

    @Option(help: "Wait this long for the other peers' acknowledgements of a takeover. [default: 5s]")
    var takeoverExpiry: Duration?

    @Option(help: ArgumentHelp("ASAP over TLS 1.3: this registrar's certificate chain (PEM).", valueName: "file"))
    var tlsCertificate: String?

    @Option(help: ArgumentHelp("The private key of --tls-certificate (PEM).", valueName: "file"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Require PEs and PUs to present a certificate signed by this CA (PEM): mutual TLS.", valueName: "file"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("Which certificate identity may register in which pools, IDENTITY=POOL[,POOL] (* for any); repeatable. Needs --tls-ca.", valueName: "rule"))
    var authorize: [String] = []

    @Option(help: ArgumentHelp("An identity that may register addresses other than its own (a proxy PE); repeatable.", valueName: "identity"))
    var proxyIdentity: [String] = []

    @Option(help: ArgumentHelp("With TLS, ENRP too: the certificate identity of a registrar of this scope; repeatable (needed with --enrp-listen or --peer).", valueName: "identity"))
    var peerIdentity: [String] = []

    @Option(help: "Close an association whose TLS handshake has not completed in this time. [default: 10s]")
    var tlsHandshakeTimeout: Duration?

    @OptionGroup var csp: ComponentStatusOptions

    func run() async throws {
        let settings = try flagSettings.merged(over: loadSettings(common.config, as: RegistrarSettings.self))
        Bootstrap.run(logLevel: try logLevel(common.logLevel, file: settings.logLevel))
        try await asValidation { try await RegistrarDaemon.run(settings, metrics: Bootstrap.metricsText) }
    }

    /// The settings the flags give (nil where a flag is absent).
    var flagSettings: RegistrarSettings {
        var settings = RegistrarSettings()
        settings.identifier = identifier
        settings.listen = listen.nonEmpty
        settings.transport = transport
        settings.status = status
        settings.keepAliveInterval = keepAliveInterval
        settings.keepAliveTimeout = keepAliveTimeout
        settings.maxUnreachableReports = maxUnreachableReports
        settings.maxHandleLength = maxHandleLength
        settings.maxPoolElements = maxPoolElements
        settings.maxPoolElementsPerAssociation = maxPoolElementsPerAssociation
        settings.maxAssociations = maxAssociations
        settings.maxAssociationsPerAddress = maxAssociationsPerAddress
        settings.maxHandshakes = maxHandshakes
        settings.messageRate = messageRate
        settings.idleTimeout = idleTimeout
        settings.partialMessageTimeout = partialMessageTimeout
        settings.notReadingTimeout = notReadingTimeout
        settings.acceptForeignAddresses = acceptForeignAddresses ? true : nil
        settings.announce = announce
        settings.announceInterface = announceInterface
        settings.enrpListen = enrpListen.nonEmpty
        settings.peer = peer.nonEmpty
        settings.enrpAnnounce = enrpAnnounce
        settings.allowedPeer = allowedPeer.nonEmpty
        settings.peerHeartbeatInterval = peerHeartbeatInterval
        settings.peerMaxTimeLastHeard = peerMaxTimeLastHeard
        settings.peerMaxTimeNoResponse = peerMaxTimeNoResponse
        settings.takeoverExpiry = takeoverExpiry
        settings.tlsCertificate = tlsCertificate
        settings.tlsKey = tlsKey
        settings.tlsCa = tlsCa
        settings.authorize = authorize.nonEmpty
        settings.proxyIdentity = proxyIdentity.nonEmpty
        settings.tlsHandshakeTimeout = tlsHandshakeTimeout
        settings.peerIdentity = peerIdentity.nonEmpty
        settings.csp = csp.csp
        settings.cspInterval = csp.cspInterval
        return settings
    }
}
