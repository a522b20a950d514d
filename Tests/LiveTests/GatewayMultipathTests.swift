import Foundation
import ProcessSupport
import Testing

/// MPTCP through the gateway between two network namespaces joined by two shaped veth links:
/// a real MPTCP client (`mptcpize run curl`) uses both paths, the gateway's telemetry and the
/// kernel's own monitor agree, and a transfer survives the loss of a link byte-exact.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct GatewayMultipathTests {
    static var unavailableReason: String? {
        TestNamespace.unavailableReason ?? missingTool("/usr/bin/mptcpize", package: "mptcpize") ?? missingTool("/usr/bin/curl", package: "curl")
    }

    struct Setup {
        let client: TestNamespace
        let server: TestNamespace
        let origin: Origin
        let gateway: LiveGateway
    }

    func setUp() async throws -> Setup {
        let (client, server) = try await TestNamespace.multipath()
        let origin = try await Origin.start(in: server)
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--allow-client", "10.78.0.0/16", "--telemetry-interval", "200ms"],
                                                in: server, host: "10.78.1.2")
        return Setup(client: client, server: server, origin: origin, gateway: gateway)
    }

    /// Downloads /bytes/SIZE from the server namespace's origin through the gateway with
    /// MPTCP curl in the client namespace; returns whether the bytes were exact.
    func download(_ setup: Setup, size: Int, during: (@Sendable () async throws -> Void)? = nil) async throws -> Bool {
        let file = temporaryFile("mptcp")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try setup.client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "--socks5-hostname", "10.78.1.2:\(setup.gateway.port)",
                                                                     "-o", file, "http://127.0.0.1:\(setup.origin.port)/bytes/\(size)"])
        try await during?()
        let status = try await curl.waitForExit(timeout: 60)
        #expect(status == 0, "curl: \(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", setup.server.name, "/usr/bin/curl", "-sS",
                                                                    "http://127.0.0.1:\(setup.origin.port)/sha/\(size)"]).output.last
        return try await sha256(ofFile: file) == expected
    }

    @Test(.enabled(if: (Self.unavailableReason) == nil, "\((Self.unavailableReason) ?? "")"))
    func mptcpClientUsesBothPathsThroughTheGateway() async throws {
        let setup = try await setUp()
        let monitor = try setup.server.run("mptcp-monitor", TestNamespace.ipTool!, ["mptcp", "monitor"])
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await download(setup, size: 20_000_000))

        let record = try #require(try await setup.gateway.records().first)
        let client = try #require(record["client"] as? [String: Any])
        #expect(client["transport"] as? String == "mptcp")
        #expect((client["subflowsMax"] as? Int ?? 0) >= 2)
        let subflows = client["subflows"] as? [[String: Any]] ?? []
        let carried = subflows.compactMap { $0["bytesAcked"] as? Int }
        #expect(carried.filter { $0 > 2_000_000 }.count >= 2, "both subflows carried data: \(carried)")
        #expect(Set(subflows.compactMap { $0["remote"] as? String }.map { $0.split(separator: ":").first ?? "" }) == ["10.78.1.1", "10.78.2.1"])
        // The kernel saw the second subflow too.
        try await monitor.waitForLine(containing: "SF_ESTABLISHED")
        #expect(monitor.lines.contains { $0.contains("SF_ESTABLISHED") && $0.contains("10.78.2.1") })

        // The summary command reads the same log.
        let stats = try await runEdgepool(["gateway", "stats", setup.gateway.log])
        #expect(stats.status == 0)
        #expect(stats.output.contains { $0.contains("bytes on additional subflows:") && $0.contains("%") && !$0.contains("–") })
    }

    @Test(.enabled(if: (Self.unavailableReason) == nil, "\((Self.unavailableReason) ?? "")"))
    func aTransferSurvivesTheLossOfALinkByteExact() async throws {
        let setup = try await setUp()
        let client = setup.client
        let exact = try await download(setup, size: 30_000_000) {
            try await Task.sleep(for: .milliseconds(1200))
            try await client.ip(["link", "set", "c1", "down"])
        }
        #expect(exact, "the download is byte-exact after link 1 went down")
        let record = try #require(try await setup.gateway.records().first)
        let side = try #require(record["client"] as? [String: Any])
        #expect((side["subflowsLost"] as? Int ?? 0) >= 1, "\(side)")
        #expect(record["survivedPathLoss"] as? Bool == true)
        #expect(record["outcome"] as? String == "ok")
    }

    /// The path manager inside the gateway (`gateway entry --path … --userspace-pm`), outside
    /// any testbed: a legacy TCP client's download crosses the entry's MPTCP leg to the exit;
    /// the entry's own path manager gives that connection its subflow on link 2, retires it
    /// when link 2 goes down (the exit's kernel hears RM_ADDR) and makes a fresh one when it
    /// returns; no byte is lost; the gateway serves `/paths` and the path metrics.
    @Test(.enabled(if: (Self.unavailableReason) == nil, "\((Self.unavailableReason) ?? "")"))
    func theEntrysOwnPathManagerCarriesALegacyClientAcrossALinkLossAndReturn() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let origin = try await Origin.start(in: server)
        let secret = temporaryFile("pair-secret")
        try "a shared secret of some length".write(toFile: secret, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let exit = try await LiveGateway.start("exit", ["--allow", "127.0.0.1/32", "--secret-file", secret], in: server, host: "0.0.0.0")
        let monitor = try server.run("mptcp-monitor", "/usr/bin/stdbuf", ["-oL", TestNamespace.ipTool!, "mptcp", "monitor"])
        let statusPort = try freePort()
        let entry = try await LiveGateway.start("entry", ["--exit", "10.78.1.2:\(exit.port)", "--secret-file", secret, "--forward", origin.authority,
                                                          "--path", "c1=10.78.1.1,noprobe", "--path", "c2=10.78.2.1,noprobe", "--userspace-pm",
                                                          "--status", "127.0.0.1:\(statusPort)"], in: client)
        let ready = try #require(entry.process.lines.lazy.compactMap(ReadyLine.init(parsing:)).first)
        #expect(ready["paths"] == "c1 10.78.1.1 id 1 active, c2 10.78.2.1 id 2 active (userspace PM)", "\(ready)")
        func link2Established() -> Int { monitor.lines.filter { $0.contains("SF_ESTABLISHED") && $0.contains("daddr4=10.78.2.1 ") }.count }
        let size = 120_000_000
        let file = temporaryFile("entry-pm")
        defer { try? FileManager.default.removeItem(atPath: file) }
        // A plain TCP client: MPTCP is the gateway pair's business.
        let curl = try client.run("curl", "/usr/bin/curl", ["-sS", "-o", file, "http://127.0.0.1:\(entry.port)/bytes/\(size)"])
        try await eventually(timeout: 3, "the entry's path manager gave the MPTCP leg a subflow on link 2") { link2Established() >= 1 }
        try await client.ip(["link", "set", "c2", "down"])
        try await eventually(timeout: 2, "the exit heard that link 2's address is gone (RM_ADDR)") {
            monitor.lines.contains { $0.contains("REMOVED") && $0.contains("remid=2") }
        }
        try await Task.sleep(for: .seconds(1))
        let before = link2Established()
        try await client.ip(["link", "set", "c2", "up"])
        try await eventually(timeout: 3, "a fresh subflow on link 2 after its return") { link2Established() > before }
        #expect(try await curl.waitForExit(timeout: 90) == 0, "\(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://\(origin.authority)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        let paths = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(statusPort)/paths"])
        #expect(paths.output.joined().contains(#""name" : "c2""#) && paths.output.joined().contains(#""restorations" : 2"#), "\(paths.output)")
        let metrics = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(statusPort)/metrics"])
        #expect(metrics.output.contains(#"edgepool_paths_retirements_total{path="c2"} 1"#), "\(metrics.output.filter { $0.contains("paths") })")
        entry.process.signal(SIGTERM)
        #expect(try await entry.process.waitForExit() == 0)
        let pmType = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "cat", "/proc/sys/net/mptcp/pm_type"])
        #expect(pmType.output.first == "0", "the namespace is back on the in-kernel PM")
        withExtendedLifetime((exit, origin)) {}
    }
}
