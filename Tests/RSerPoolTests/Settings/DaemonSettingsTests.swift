import Foundation
import NIOCore
import RSerPool
import RSerPoolCore
import RSerPoolWire
import Testing

/// Configuration files and flags become configuration values in the library, with the
/// checks and defaults the CLI relies on.
@Suite struct DaemonSettingsTests {
    static func registrar(_ json: String) throws -> RegistrarSettings {
        try RegistrarSettings.decode(Data(json.utf8), source: "registrar.json")
    }

    @Test func aRegistrarFileBecomesItsConfiguration() throws {
        let settings = try Self.registrar("""
        {"identifier": "0x52", "listen": ["127.0.0.1:0", "[::1]:0"], "transport": "tcp", "keepAliveInterval": "2s",
         "maxHandleLength": 64, "messageRate": 0, "enrpListen": ["127.0.0.1:0"], "peer": ["127.0.0.1:9902"], "allowedPeer": ["$53"]}
        """)
        let configuration = try settings.configuration()
        #expect(configuration.registrar.identifier == RegistrarIdentifier(0x52))
        #expect(configuration.listenAddresses.count == 2)
        #expect(configuration.transport == .tcp)
        #expect(configuration.registrar.keepAliveInterval == .seconds(2))
        #expect(configuration.registrar.maximumPoolHandleLength == 64)
        #expect(configuration.associationLimits.messageRate == 0)
        #expect(configuration.peers.count == 1)
        #expect(configuration.registrar.allowedPeers == [RegistrarIdentifier(0x53)])
    }

    @Test func noSettingsGiveTheDefaults() throws {
        let configuration = try RegistrarSettings().configuration()
        #expect(configuration.listenAddresses.map(\.port) == [3863])
        #expect(configuration.transport == .mptcp)
        #expect(configuration.associationLimits.messageRate == AssociationLimits().messageRate)
        #expect(!configuration.registrar.acceptsForeignAddresses)
    }

    @Test func unknownKeysAndMalformedValuesAreNamed() {
        #expect(throws: ConfigurationError.self) { try Self.registrar(#"{"lisen": ["127.0.0.1:0"]}"#) }
        do {
            _ = try Self.registrar(#"{"lisen": ["127.0.0.1:0"]}"#)
        } catch {
            #expect("\(error)".contains("unknown key(s) lisen; known:"), "\(error)")
            #expect("\(error)".contains("listen"))
        }
        do {
            _ = try Self.registrar(#"{"keepAliveInterval": "soon"}"#)
            Issue.record("accepted a malformed duration")
        } catch {
            #expect("\(error)" == "registrar.json: 'keepAliveInterval': 'soon' is not a duration such as 5s or 250ms", "\(error)")
        }
        do {
            _ = try Self.registrar(#"{"maxHandleLength": "long"}"#)
            Issue.record("accepted a string for a number")
        } catch {
            #expect("\(error)".contains("'maxHandleLength' has the wrong type"), "\(error)")
        }
        #expect(throws: ConfigurationError.self) { try RegistrarSettings.decode(Data("[1, 2]".utf8), source: "x") }
    }

    @Test func outOfRangeValuesNameTheFlagAndTheKey() throws {
        var settings = RegistrarSettings()
        settings.maxHandleLength = 2000
        #expect(throws: ConfigurationError("--max-handle-length (maxHandleLength) must be 1…1024, not 2000")) { try settings.configuration() }
        settings = RegistrarSettings()
        settings.maxUnreachableReports = 0
        #expect(throws: ConfigurationError("--max-unreachable-reports (maxUnreachableReports) must be at least 1, not 0")) { try settings.configuration() }
        settings = RegistrarSettings()
        settings.identifier = "0"
        #expect(throws: ConfigurationError.self) { try settings.configuration() }
        settings = RegistrarSettings()
        settings.peer = [Endpoint(host: "127.0.0.1", port: 9902)]
        #expect(throws: ConfigurationError.self, "peers need an ENRP listener") { try settings.configuration() }
        settings = RegistrarSettings()
        settings.idleTimeout = SettingDuration(.zero)
        #expect(throws: ConfigurationError.self) { try settings.configuration() }
    }

    @Test func flagsWinOverTheFileAndTheFileFillsTheRest() throws {
        let file = try Self.registrar(#"{"listen": ["127.0.0.1:4000"], "keepAliveTimeout": "7s", "allowedPeer": ["1"]}"#)
        var flags = RegistrarSettings()
        flags.listen = [Endpoint(host: "127.0.0.1", port: 5000)]
        flags.messageRate = 50
        let merged = flags.merged(over: file)
        #expect(merged.listen == [Endpoint(host: "127.0.0.1", port: 5000)])
        #expect(merged.keepAliveTimeout == SettingDuration(.seconds(7)))
        #expect(merged.allowedPeer == ["1"])
        #expect(merged.messageRate == 50)
        #expect(RegistrarSettings().merged(over: file) == file)
    }

    @Test func theKeysAreTheProperties() {
        #expect(RegistrarSettings.keys.contains("keepAliveInterval"))
        #expect(RegistrarSettings.keys.contains("logLevel"))
        #expect(PoolElementSettings.keys.contains("reregistrationInterval"))
        #expect(RegistrarSettings.keys.count == 38)
        #expect(RegistrarSettings.keys.isSuperset(of: ["tlsCertificate", "tlsKey", "tlsCa", "authorize", "proxyIdentity", "tlsHandshakeTimeout", "csp", "cspInterval", "peerIdentity"]))
    }

    @Test func tlsSettingsAreCheckedTogether() throws {
        var settings = RegistrarSettings()
        settings.tlsCertificate = "/nonexistent/pr.pem"
        #expect { try settings.configuration() } throws: { "\($0)".contains("--tls-key (tlsKey)") || "\($0)".contains("tlsKey") }
        settings.tlsKey = "/nonexistent/pr.key"
        #expect { try settings.configuration() } throws: { "\($0)".contains("cannot read the TLS certificate file '/nonexistent/pr.pem'") }
        var rules = RegistrarSettings()
        rules.authorize = ["edge-1=EchoPool"]
        rules.tlsCertificate = "c"
        rules.tlsKey = "k"
        #expect { try rules.configuration() } throws: { "\($0)".contains("--tls-ca (tlsCa)") }
        var pe = PoolElementSettings()
        pe.tlsCertificate = "edge.pem"
        #expect { try pe.configuration() } throws: { "\($0)".contains("tlsCa") }
    }

    @Test func aPoolElementsPolicyLoadsAndRegistration() throws {
        let settings = try PoolElementSettings.decode(Data(#"""
        {"pool": "CalcPool", "policy": "plu", "increment": 0.1, "maxSessions": 4, "reregistrationInterval": "10s",
         "registrar": ["127.0.0.1:3863", "127.0.0.1:3864"], "identifier": "$00000007"}
        """#.utf8), source: "pe.json")
        let configuration = try settings.configuration()
        #expect(configuration.poolHandle == PoolHandle("CalcPool"))
        #expect(configuration.policy == .priorityLeastUsed(load: 0, increment: PoolPolicy.load(fraction: 0.1)))
        #expect(configuration.sessionsForFullLoad == 4)
        #expect(configuration.registrars.addresses.count == 2)
        let registration = configuration.registration(userTransport: .tcp(.v4(0x7F00_0001), port: 4000))
        #expect(registration.identifier == PoolElementIdentifier(7))
        #expect(registration.reregistrationInterval == .seconds(10))
        #expect(registration.registrationLife == .seconds(30))
    }

    @Test func aPoolElementsBadSettingsAreRefused() throws {
        var settings = PoolElementSettings()
        settings.policy = "fastest"
        #expect(throws: ConfigurationError.self) { try settings.configuration() }
        settings = PoolElementSettings()
        settings.load = 1.5
        #expect(throws: ConfigurationError("--load (load) must be 0.0…1.0, not 1.5")) { try settings.configuration() }
        settings = PoolElementSettings()
        settings.pool = String(repeating: "p", count: 33)
        #expect(throws: ConfigurationError.self) { try settings.configuration() }
        settings = PoolElementSettings()
        settings.maxSessions = 0
        #expect(throws: ConfigurationError.self) { try settings.configuration() }
        settings = PoolElementSettings()
        settings.proxy = Endpoint(host: "127.0.0.1", port: 80)
        settings.healthHttp = "healthz"
        #expect { try settings.configuration() } throws: { "\($0)".contains("must be a path such as /healthz") }
        settings.healthHttp = "/healthz"
        #expect(try settings.configuration().healthCheck.httpPath == "/healthz")
    }

    @Test func aRegistrarIdentityForAdoptionNeedsTheTLSFiles() {
        var settings = PoolElementSettings()
        settings.registrarIdentity = ["pr-1"]
        #expect { try settings.configuration() } throws: { "\($0)".contains("--registrar-identity (registrarIdentity) names the registrars") }
        settings.registrarIdentity = []
        #expect((try? settings.configuration())?.registrars.adoptionIdentities == [])
    }

    @Test func aProxyPEsCommandCheckAndLoadSourceAreCheckedTogether() throws {
        var settings = PoolElementSettings()
        settings.proxy = Endpoint(host: "127.0.0.1", port: 5432)
        settings.healthCommand = "pg_isready -h \"$1\" -p \"$2\""
        #expect(try settings.configuration().healthCheck.command == "pg_isready -h \"$1\" -p \"$2\"")
        settings.healthHttp = "/healthz"
        #expect { try settings.configuration() } throws: { "\($0)".contains("two checks") }
        settings.healthHttp = nil

        settings.loadConnections = 100
        #expect { try settings.configuration() } throws: { "\($0)".contains("needs a Least-Used policy") }
        settings.policy = "lu"
        #expect(try settings.configuration().proxyLoad == .connections(full: 100))
        settings.loadUrl = "http://127.0.0.1:9100/metrics"
        #expect { try settings.configuration() } throws: { "\($0)".contains("two load sources") }
        settings.loadConnections = nil
        settings.loadMetric = "http_connections"
        settings.loadFull = 50
        #expect(try settings.configuration().proxyLoad == .http(host: "127.0.0.1", port: 9100, path: "/metrics", metric: "http_connections", full: 50))
        settings.loadMetric = "not-a-name"
        #expect { try settings.configuration() } throws: { "\($0)".contains("--load-metric (loadMetric)") }
        settings.loadMetric = nil
        settings.loadUrl = "https://127.0.0.1/"
        #expect { try settings.configuration() } throws: { "\($0)".contains("must be http://") }
        settings.loadUrl = nil
        #expect { try settings.configuration() } throws: { "\($0)".contains("--load-full (loadFull) needs loadUrl") }
        settings.loadFull = nil
        settings.proxy = nil
        settings.healthCommand = nil
        settings.loadConnections = 4
        #expect { try settings.configuration() } throws: { "\($0)".contains("is for a proxy PE") }
    }

    @Test(arguments: [("5s", 5_000_000_000), ("250ms", 250_000_000), ("1.5s", 1_500_000_000), ("2m", 120_000_000_000), ("0", 0), ("500us", 500_000)])
    func durationsParse(_ text: String, nanoseconds: Int64) throws {
        #expect(try #require(SettingDuration(text)).amount == .nanoseconds(nanoseconds))
    }

    @Test func badDurationsAndEndpointsAreRefused() {
        for text in ["", "5", "-1s", "soon", "1e30h"] { #expect(SettingDuration(text) == nil, "\(text)") }
        for text in ["", "host", ":80", "host:65536", "[::1]80", "[::1]:"] { #expect(Endpoint(text) == nil, "\(text)") }
        #expect(Endpoint("[::1]:3863") == Endpoint(host: "::1", port: 3863))
        #expect(Endpoint("[::1]:3863")?.description == "[::1]:3863")
    }
}
