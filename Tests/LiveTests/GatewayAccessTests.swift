import Foundation
import Testing

/// The gateway's safe defaults, against real processes and real clients: no open proxy
/// beyond loopback unless asked for, client access lists, password guessers blocked, HTTP
/// CONNECT held to port 443, private destinations refused.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct GatewayAccessTests {
    @Test func anOpenProxyBeyondLoopbackRefusesToStartUnlessAskedFor() async throws {
        for mode in ["socks", "http"] {
            let refused = try await runEdgepool(["gateway", mode, "--listen", "0.0.0.0:0"])
            #expect(refused.status != 0, "\(mode): \(refused.output)")
            #expect(refused.output.contains { $0.contains("refusing to start") && $0.contains("open proxy") && $0.contains("--allow-client") },
                    "\(mode): \(refused.output)")
        }
        let entry = try await runEdgepool(["gateway", "entry", "--listen", "[::]:0", "--exit", "127.0.0.1:9", "--secret", "0123456789abcdef0123"])
        #expect(entry.status != 0 && entry.output.contains { $0.contains("open proxy") }, "\(entry.output)")
        // An entry with a fixed destination, a reverse proxy and an exit are no open proxies.
        let forward = try liveProcess("entry-forward", ["gateway", "entry", "--listen", "0.0.0.0:0", "--exit", "127.0.0.1:9",
                                                        "--forward", "127.0.0.1:9", "--secret", "0123456789abcdef0123"])
        _ = try await forward.waitForReady()
        // Asked for explicitly: it starts, and says so.
        let open = try liveProcess("open-proxy", ["gateway", "socks", "--listen", "0.0.0.0:0", "--open-proxy"])
        _ = try await open.waitForReady()
        _ = try await open.waitForLine(containing: "open proxy: anyone who reaches the listener may use it")
        // Authentication or a client list is enough.
        let authenticated = try liveProcess("authenticated", ["gateway", "socks", "--listen", "0.0.0.0:0", "--user", "a:b"])
        _ = try await authenticated.waitForReady()
        let listed = try liveProcess("listed", ["gateway", "http", "--listen", "0.0.0.0:0", "--allow-client", "192.0.2.0/24"])
        _ = try await listed.waitForReady()
        let badList = try await runEdgepool(["gateway", "socks", "--allow-client", "example.org"])
        #expect(badList.status != 0 && badList.output.contains { $0.contains("client rule 'example.org'") }, "\(badList.output)")
    }

    @Test func clientsOutsideTheAccessListAreClosedAtAcceptAndCounted() async throws {
        let origin = try await Origin.start()
        let statusPort = try freePort()
        // Listening on every loopback address; only 127.0.0.2 may use it.
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--allow-client", "127.0.0.2/32",
                                                            "--status", "127.0.0.1:\(statusPort)"], host: "127.0.0.1")
        let stranger = try await runCommand("/usr/bin/curl", ["-sS", "--max-time", "5", "--socks5", "127.0.0.1:\(gateway.port)", "-o", "/dev/null",
                                                             "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(stranger.status != 0, "\(stranger.output)")
        // A listed client (its source address 127.0.0.2) is served.
        let listed = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--allow-client", "127.0.0.2/32"], host: "0.0.0.0")
        let served = try await runCommand("/usr/bin/curl", ["-sS", "--max-time", "5", "--interface", "127.0.0.2", "--socks5", "127.0.0.1:\(listed.port)",
                                                           "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(served.output.last == "200", "\(served.output)")
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_clients_refused_total") && $0.contains("reason=\"not_allowed\"") && $0.hasSuffix(" 1") },
                "\(metrics.filter { $0.contains("refused") })")
        try await eventually(timeout: 5, "the refusal logged") {
            gateway.process.lines.contains { $0.contains("client refused at accept") && $0.contains("not in the client access list") }
        }
    }

    @Test func aPasswordGuesserIsBlockedWhileOtherClientsAreServed() async throws {
        let origin = try await Origin.start()
        let statusPort = try freePort()
        let socks = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "alice:correct-horse", "--status", "127.0.0.1:\(statusPort)"],
                                                host: "0.0.0.0")
        func fetch(_ credentials: String, from source: String) async throws -> String {
            try await runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "--interface", source, "--socks5", "\(credentials)@127.0.0.1:\(socks.port)",
                                                   "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(origin.port)/bytes/10"]).output.last ?? ""
        }
        #expect(try await fetch("alice:correct-horse", from: "127.0.0.1") == "200")
        for guess in 0..<5 { #expect(try await fetch("alice:guess\(guess)", from: "127.0.0.1") != "200") }
        // Blocked now, even with the right password; another address is not.
        #expect(try await fetch("alice:correct-horse", from: "127.0.0.1") != "200")
        #expect(try await fetch("alice:correct-horse", from: "127.0.0.3") == "200")
        try await eventually(timeout: 5, "the block logged once") {
            socks.process.lines.filter { $0.contains("blocked after repeated failed authentications") }.count == 1
        }
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_authentication_failures_total") && $0.hasSuffix(" 5") }, "\(metrics.filter { $0.contains("auth") })")
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_clients_refused_total") && $0.contains("reason=\"blocked\"") && $0.hasSuffix(" 1") })

        // HTTP Basic: the same rule; a request without credentials is no guess.
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32", "--user", "bob:pw"], host: "0.0.0.0")
        func get(_ arguments: [String], from source: String) async throws -> String {
            try await runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "--interface", source, "-x", "http://127.0.0.1:\(http.port)", "-o", "/dev/null",
                                                   "-w", "%{http_code}"] + arguments + ["http://127.0.0.1:\(origin.port)/bytes/1"]).output.last ?? ""
        }
        for _ in 0..<6 { #expect(try await get([], from: "127.0.0.4") == "407") }
        #expect(try await get(["-U", "bob:pw"], from: "127.0.0.4") == "200")
        for guess in 0..<5 { #expect(try await get(["-U", "bob:x\(guess)"], from: "127.0.0.4") == "407") }
        #expect(try await get(["-U", "bob:pw"], from: "127.0.0.4") == "000")   // closed at accept
        #expect(try await get(["-U", "bob:pw"], from: "127.0.0.5") == "200")
    }

    @Test func httpConnectIsHeldToPort443AndPrivateDestinationsAreRefused() async throws {
        let origin = try await Origin.start()
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32"])
        let proxy = "http://127.0.0.1:\(http.port)"
        // curl reports the proxy's answer to CONNECT as http_connect.
        let tunnel = try await runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "-p", "-x", proxy, "-o", "/dev/null", "-w", "%{http_connect}",
                                                           "http://127.0.0.1:\(origin.port)/bytes/1"])
        #expect(tunnel.output.last == "403", "\(tunnel.output)")
        try await eventually(timeout: 5, "the reason logged") { http.process.lines.contains { $0.contains("CONNECT is limited to port 443") } }
        // A rule that names the port opens it.
        let named = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32:\(origin.port)"])
        let opened = try await runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "-p", "-x", "http://127.0.0.1:\(named.port)", "-o", "/dev/null",
                                                           "-w", "%{http_code}", "http://127.0.0.1:\(origin.port)/bytes/1"])
        #expect(opened.output.last == "200", "\(opened.output)")
        // Private and shared ranges are refused without an address rule (SOCKS5 reply 2, HTTP 403),
        // before any connection is tried.
        let socks = try await LiveGateway.start("socks", [])
        for target in ["10.20.30.40", "192.168.1.1", "172.20.0.1", "100.64.0.1", "[fd00::1]"] {
            let refused = try await runCommand("/usr/bin/curl", ["-sS", "--max-time", "5", "--socks5", "127.0.0.1:\(socks.port)", "-o", "/dev/null",
                                                                "http://\(target):80/"])
            #expect(refused.status == 97 && refused.output.joined().contains("(2)"), "\(target): \(refused.output)")
            let forbidden = try await runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "-x", proxy, "-o", "/dev/null", "-w", "%{http_code}", "http://\(target):80/"])
            #expect(forbidden.output.last == "403", "\(target): \(forbidden.output)")
        }
        let records = try await socks.records(atLeast: 5)
        #expect(records.allSatisfy { ($0["error"] as? String)?.contains("range") == true }, "\(records)")
    }
}
