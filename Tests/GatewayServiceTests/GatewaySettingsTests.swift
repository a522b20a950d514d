import Foundation
import Gateway
import GatewayService
import NIOCore
import PathManager
import RSerPool
import RSerPoolWire
import Testing

/// The gateway's settings per mode: defaults, checks, the keys each mode accepts.
@Suite struct GatewaySettingsTests {
    static func settings(_ json: String, for kind: GatewaySettings.Kind) throws -> GatewaySettings {
        try GatewaySettings.decode(Data(json.utf8), source: "gateway.json", allowing: GatewaySettings.keys(for: kind))
    }

    @Test func eachModeListensWhereItsDefaultSays() throws {
        for kind in GatewaySettings.Kind.allCases {
            var settings = GatewaySettings()
            switch kind {
            case .reverse: settings.backends = [Endpoint(host: "127.0.0.1", port: 80)]
            case .entry: settings.exit = Endpoint(host: "127.0.0.1", port: 7000); settings.secret = String(repeating: "s", count: 32)
            case .exit: settings.secret = String(repeating: "s", count: 32)
            default: break
            }
            let configuration = try settings.configuration(kind)
            #expect(configuration.listen.map(\.port) == [kind.defaultListen.port], "\(kind)")
            let loopbackOnly = [GatewaySettings.Kind.socks, .http, .entry].contains(kind)
            #expect(configuration.listen.allSatisfy { $0.ipAddress == "127.0.0.1" } == loopbackOnly, "\(kind)")
        }
    }

    @Test func aSOCKSFileWithUsersRulesAndLimits() throws {
        let settings = try Self.settings("""
        {"listen": ["127.0.0.1:0"], "allow": ["10.0.0.0/8"], "users": {"carol": "pw"}, "idleTimeout": "30s",
         "maxConnections": 50, "udp": false, "maxUdpAssociations": 7}
        """, for: .socks)
        var flags = GatewaySettings()
        flags.user = ["dave:secret"]
        let configuration = try flags.merged(over: settings).configuration(.socks)
        #expect(configuration.limits.idleTimeout == .seconds(30))
        #expect(configuration.limits.maximumConnections == 50)
        #expect(configuration.limits.maximumUDPAssociations == 7)
        #expect(!configuration.udpRelay)
        #expect(configuration.credentials != nil)
        #expect(configuration.destinations.allow.count == 1)
    }

    @Test func anotherModesKeysAreRefused() {
        #expect(throws: ConfigurationError.self) { try Self.settings(#"{"udp": true}"#, for: .http) }
        #expect(throws: ConfigurationError.self) { try Self.settings(#"{"backends": ["127.0.0.1:80"]}"#, for: .socks) }
        #expect((try? Self.settings(#"{"connectPorts": ["22"]}"#, for: .http)) != nil)
    }

    @Test func rangesAndCombinationsAreChecked() {
        var settings = GatewaySettings()
        settings.readsPerEvent = 99
        #expect(throws: ConfigurationError("--reads-per-event (readsPerEvent) must be 1…16, not 99")) { try settings.configuration(.socks) }
        settings = GatewaySettings()
        settings.bufferLimit = 100
        #expect(throws: ConfigurationError.self) { try settings.configuration(.socks) }
        settings = GatewaySettings()
        settings.threads = 0
        #expect(throws: ConfigurationError.self) { try settings.configuration(.socks) }
        settings = GatewaySettings()
        #expect(throws: ConfigurationError.self, "reverse needs backends or a pool") { try settings.configuration(.reverse) }
        settings.pool = "WebPool"
        settings.backends = [Endpoint(host: "127.0.0.1", port: 80)]
        #expect(throws: ConfigurationError.self, "not both") { try settings.configuration(.reverse) }
        settings.backends = nil
        settings.preconnect = 4
        #expect(throws: ConfigurationError.self, "preconnect needs a list") { try settings.configuration(.reverse) }
        settings = GatewaySettings()
        #expect(throws: ConfigurationError.self, "the pair needs a secret") { try settings.configuration(.exit) }
        // An entry holds connections to its exit; 65 is beyond the range, and `preconnect` is
        // an entry's key, not an exit's.
        settings.exit = Endpoint(host: "192.0.2.1", port: 7000)
        settings.secret = "a shared secret of some length"
        settings.preconnect = 2
        #expect((try? settings.configuration(.entry))?.preconnect == 2)
        settings.preconnect = 65
        #expect(throws: ConfigurationError("--preconnect (preconnect) must be 0…64, not 65")) { try settings.configuration(.entry) }
        #expect(GatewaySettings.keys(for: .entry).contains("preconnect") && !GatewaySettings.keys(for: .exit).contains("preconnect"))
        settings = GatewaySettings()
        settings.user = ["nocolon"]
        #expect(throws: ConfigurationError.self) { try settings.configuration(.socks) }
        settings = GatewaySettings()
        settings.connectPorts = ["22-21"]
        #expect(throws: ConfigurationError.self) { try settings.configuration(.http) }
    }

    @Test func connectPortsAndTheEntrysForwardDestination() throws {
        var settings = GatewaySettings()
        settings.connectPorts = ["22", "8000-8100"]
        #expect(try settings.configuration(.http).tunnelPorts == [22...22, 8000...8100])
        settings = GatewaySettings()
        settings.exit = Endpoint(host: "127.0.0.1", port: 7000)
        settings.secret = String(repeating: "k", count: 32)
        settings.forward = "origin.example:80"
        guard case .entry(_, let forward?) = try settings.configuration(.entry).mode else {
            Issue.record("no forward destination")
            return
        }
        #expect("\(forward)".contains("origin.example"))
        settings.forward = "no port"
        #expect(throws: ConfigurationError.self) { try settings.configuration(.entry) }
    }

    @Test func theEncryptedPairNeedsAllThreeFilesAndAnEntryNamesOneExit() throws {
        var settings = GatewaySettings()
        settings.exit = Endpoint(host: "127.0.0.1", port: 7000)
        settings.secret = String(repeating: "k", count: 32)
        #expect(try settings.configuration(.entry).pairTLS == nil, "no TLS setting: the plain pair")
        settings.tlsCa = "/nonexistent/ca.pem"
        #expect(throws: ConfigurationError("the encrypted pair needs --tls-certificate, --tls-key and --tls-ca on both gateways (mutual authentication)")) {
            try settings.configuration(.entry)
        }
        settings.tlsCertificate = "/nonexistent/entry.pem"
        settings.tlsKey = "/nonexistent/entry.key"
        settings.peerIdentity = ["exit-a", "exit-b"]
        #expect(throws: ConfigurationError("an entry names one exit: give --peer-identity once")) { try settings.configuration(.entry) }
        settings.peerIdentity = ["exit-a"]
        #expect(performing: { try settings.configuration(.entry) }, throws: { "\($0)".contains("cannot read the TLS CA file '/nonexistent/ca.pem'") })
        #expect(try Self.settings(#"{"tlsCa": "ca.pem", "peerIdentity": ["entry-1"]}"#, for: .exit).peerIdentity == ["entry-1"])
        #expect(throws: ConfigurationError.self, "not a key of the SOCKS5 server") { try Self.settings(#"{"tlsCa": "ca.pem"}"#, for: .socks) }
    }

    @Test func pathsMakeTheGatewayRunThePathManager() throws {
        #expect(try GatewaySettings().pathManager() == nil, "no paths: no path manager")
        var settings = GatewaySettings()
        settings.path = ["c1=10.78.1.1,noprobe", "c2=auto,backup"]
        settings.probe = "10.78.1.2:9"
        settings.userspacePm = true
        let configuration = try #require(try settings.pathManager())
        #expect(configuration.paths.map(\.interface) == ["c1", "c2"] && configuration.paths[1].automatic && configuration.kernelManager == .userspace)
        #expect(configuration.probeTarget == .init(address: IPAddress("10.78.1.2")!, port: 9))
        var orphan = GatewaySettings()
        orphan.probe = "10.78.1.2:9"
        #expect(throws: ConfigurationError.self, "a probe without a path") { try orphan.pathManager() }
        var bad = GatewaySettings()
        bad.path = ["c1=nowhere"]
        #expect(throws: ConfigurationError.self) { try bad.pathManager() }
        // The keys are common to every mode.
        #expect(GatewaySettings.Kind.allCases.allSatisfy { GatewaySettings.keys(for: $0).isSuperset(of: ["path", "probe", "userspacePm"]) })
    }
}
