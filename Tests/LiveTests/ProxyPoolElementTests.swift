import Foundation
import ProcessSupport
import Testing

/// A proxy PE for an unmodified server (Python's http.server): registered while it answers,
/// deregistered when it dies, registered again when it comes back — and reachable through
/// the gateway's reverse proxy on the pool meanwhile, untouched.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct ProxyPoolElementTests {
    static var unavailableReason: String? { missingTool("/usr/bin/python3", package: "python3") ?? missingTool("/usr/bin/curl", package: "curl") }

    static func legacyServer(port: Int) throws -> ChildProcess {
        try ChildProcess("http.server", ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", "/usr/share/doc"],
                         executable: "/usr/bin/python3")
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aLegacyServerIsInThePoolOnlyWhileItAnswers() async throws {
        let status = try freePort(), legacyPort = try freePort()
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)"])
        let asap = try #require(try await registrar.waitForReady()["asap"])
        var server: ChildProcess? = try Self.legacyServer(port: legacyPort)
        let proxy = try liveProcess("proxy-pe", ["pe", "--pool", "WebPool", "--registrar", asap, "--transport", "tcp", "--proxy", "127.0.0.1:\(legacyPort)",
                                                 "--health-interval", "200ms", "--health-timeout", "200ms"])
        let ready = try await proxy.waitForReady()
        #expect(ready["service"] == "proxy" && ready["user"] == "127.0.0.1:\(legacyPort)", "\(ready)")
        try await eventually(timeout: 5, "the healthy server is registered") { try await TrustLiveTests.poolElements(status: status) == 1 }

        // Users reach it through the gateway's reverse proxy on the pool, the server untouched.
        let gateway = try await LiveGateway.start("reverse", ["--pool", "WebPool", "--registrar", asap, "--allow", "127.0.0.1/32"])
        let page = try await runCommand("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(gateway.port)/"])
        #expect(page.output.last == "200", "\(page.output)")

        server?.signal(SIGKILL)
        _ = try await server?.waitForExit()
        server = nil
        let died = Date()
        try await eventually(timeout: 3, "the dead server leaves the pool") { try await TrustLiveTests.poolElements(status: status) == 0 }
        print("proxy PE: the dead server left the pool \(String(format: "%.2f", Date().timeIntervalSince(died))) s after it died")
        _ = try await proxy.waitForLine(containing: "server failed its health checks", timeout: 1)

        server = try Self.legacyServer(port: legacyPort)
        try await eventually(timeout: 5, "the returned server is registered again") { try await TrustLiveTests.poolElements(status: status) == 1 }
        let again = try await runCommand("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(gateway.port)/"])
        #expect(again.output.last == "200", "\(again.output)")
        proxy.signal(SIGTERM)
        #expect(try await proxy.waitForExit() == 0)
        try await eventually(timeout: 3, "SIGTERM deregisters it") { try await TrustLiveTests.poolElements(status: status) == 0 }
        withExtendedLifetime([registrar, server]) {}
    }

    /// An HTTP health check (`--health-http PATH`): a server that accepts connections but
    /// answers the path with 404 is never registered, while the same server checked on a path
    /// it serves is.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func anHTTPHealthCheckKeepsOutAServerThatAnswersWithAnError() async throws {
        let status = try freePort(), legacyPort = try freePort()
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)"])
        let asap = try #require(try await registrar.waitForReady()["asap"])
        let server = try Self.legacyServer(port: legacyPort)
        func proxy(_ name: String, pool: String, path: String) throws -> ChildProcess {
            try liveProcess(name, ["pe", "--pool", pool, "--registrar", asap, "--transport", "tcp", "--proxy", "127.0.0.1:\(legacyPort)",
                                   "--health-interval", "200ms", "--health-timeout", "300ms", "--health-http", path, "--log-level", "info"])
        }
        let good = try proxy("proxy-good", pool: "GoodPool", path: "/")
        let broken = try proxy("proxy-broken", pool: "BrokenPool", path: "/no-such-page")
        _ = try await good.waitForReady()
        _ = try await broken.waitForReady()
        try await eventually(timeout: 5, "the server checked on a path it serves is registered") { try await TrustLiveTests.poolElements(status: status) == 1 }
        _ = try await broken.waitForLine(containing: "HTTP 404", timeout: 3)
        try await Task.sleep(for: .seconds(1))
        #expect(try await TrustLiveTests.poolElements(status: status) == 1, "the one answering 404 stays out")
        #expect(!broken.lines.contains { $0.contains("server healthy") }, "\(broken.lines.suffix(3))")
        withExtendedLifetime([registrar, server, good]) {}
    }

    /// A command health check (`--health-command`): `$1`/`$2` are the server's address and
    /// port; exit 0 passes; a command still running after `--health-timeout` fails and is
    /// killed with what it started.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aCommandHealthCheckDecidesAndOneThatHangsIsKilled() async throws {
        let status = try freePort(), legacyPort = try freePort()
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)"])
        let asap = try #require(try await registrar.waitForReady()["asap"])
        let flag = temporaryFile("healthy")
        try "".write(toFile: flag, atomically: true, encoding: .utf8)
        // Passes while the flag exists and it was handed the server's address; otherwise it hangs.
        let marker = "31.\(Int.random(in: 100...999))"
        let command = "test -e \(flag) && [ \"$1:$2\" = 127.0.0.1:\(legacyPort) ] || sleep \(marker)"
        let proxy = try liveProcess("proxy-pe", ["pe", "--pool", "DbPool", "--registrar", asap, "--transport", "tcp", "--proxy", "127.0.0.1:\(legacyPort)",
                                                 "--health-interval", "200ms", "--health-timeout", "300ms", "--health-command", command, "--log-level", "info"])
        _ = try await proxy.waitForReady()
        try await eventually(timeout: 5, "registered while the command passes") { try await TrustLiveTests.poolElements(status: status) == 1 }
        try FileManager.default.removeItem(atPath: flag)
        try await eventually(timeout: 5, "deregistered once it hangs past the timeout") { try await TrustLiveTests.poolElements(status: status) == 0 }
        #expect(proxy.lines.contains { $0.contains("command still running after") }, "\(proxy.lines.suffix(3))")
        try await Task.sleep(for: .milliseconds(300))
        // `^sleep`: the sleep itself, not the shell whose command line names it.
        let left = try await runCommand("/usr/bin/pgrep", ["-f", "^sleep \(marker)"])
        let ps = try await runCommand("/bin/ps", ["-o", "pid,ppid,stat,cmd", "-C", "sleep"])
        #expect(left.output.filter { !$0.isEmpty }.count <= 1, "no more than the check under way: \(left.output) \(ps.output)")
        proxy.signal(SIGTERM)
        #expect(try await proxy.waitForExit() == 0)
        try await Task.sleep(for: .milliseconds(400))
        let after = try await runCommand("/usr/bin/pgrep", ["-f", "^sleep \(marker)"])
        #expect(after.output.filter { !$0.isEmpty }.isEmpty, "every hanging check was killed: \(after.output)")
        withExtendedLifetime(registrar) {}
    }

    /// The policy values of a pool's PEs in a registrar's handlespace: the load fraction of
    /// each Least-Used PE.
    static func loads(status: Int, pool: String) async throws -> [Double] {
        let handlespace = try await runEdgepool(["handlespace", "--status", "127.0.0.1:\(status)", "--json"])
        let json = try #require(handlespace.output.joined().data(using: .utf8).flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] })
        let pools = json["pools"] as? [[String: Any]] ?? []
        let elements = pools.first { $0["handle"] as? String == pool }?["elements"] as? [[String: Any]] ?? []
        return elements.compactMap { element in
            // "LU(2147483648)": the load as a fraction of UInt32.max.
            guard let policy = element["policy"] as? String, let open = policy.firstIndex(of: "("),
                  let value = Double(policy[policy.index(after: open)...].prefix { $0.isNumber }) else { return nil }
            return value / Double(UInt32.max)
        }
    }

    /// Load for the Least-Used policies: the server's established connections on this host
    /// (`--load-connections 4`: two held open are 50 %), and a Prometheus metric fetched from
    /// a URL (`--load-url … --load-metric … --load-full 4`), both followed as they change.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aProxyPEReportsItsServersLoadFromConnectionsOrAMetricsURL() async throws {
        let status = try freePort(), legacyPort = try freePort(), metricsPort = try freePort()
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)"])
        let asap = try #require(try await registrar.waitForReady()["asap"])
        let server = try Self.legacyServer(port: legacyPort)
        let metricsDirectory = temporaryFile("metrics")
        try FileManager.default.createDirectory(atPath: metricsDirectory, withIntermediateDirectories: true)
        func exposeSessions(_ counts: [Int]) throws {
            let lines = counts.enumerated().map { "app_sessions{worker=\"\($0.offset)\"} \($0.element)" }
            try (["# TYPE app_sessions gauge"] + lines + ["app_sessions_total 99", ""]).joined(separator: "\n")
                .write(toFile: "\(metricsDirectory)/metrics", atomically: true, encoding: .utf8)
        }
        try exposeSessions([1, 2])
        let metrics = try ChildProcess("metrics", ["-m", "http.server", "\(metricsPort)", "--bind", "127.0.0.1", "--directory", metricsDirectory],
                                       executable: "/usr/bin/python3")
        let common = ["--registrar", asap, "--transport", "tcp", "--proxy", "127.0.0.1:\(legacyPort)", "--policy", "lu",
                      "--health-interval", "200ms", "--health-timeout", "300ms", "--log-level", "info"]
        let byConnections = try liveProcess("proxy-connections", ["pe", "--pool", "ConnPool", "--load-connections", "4"] + common)
        let byMetric = try liveProcess("proxy-metric", ["pe", "--pool", "MetricPool", "--load-url", "http://127.0.0.1:\(metricsPort)/metrics",
                                                        "--load-metric", "app_sessions", "--load-full", "4"] + common)
        _ = try await byConnections.waitForReady()
        _ = try await byMetric.waitForReady()
        try await eventually(timeout: 6, "both registered, idle server at 0 %, the metric at 3 of 4") {
            let (connections, metric) = (try await Self.loads(status: status, pool: "ConnPool"), try await Self.loads(status: status, pool: "MetricPool"))
            return connections.count == 1 && connections[0] < 0.01 && metric.count == 1 && abs(metric[0] - 0.75) < 0.01
        }
        // Two clients hold connections to the server: 2 of 4.
        var held: [RawConnection]? = try (0..<2).map { _ in try RawConnection(port: legacyPort) }
        try await eventually(timeout: 5, "two held connections are 50 %") {
            let loads = try await Self.loads(status: status, pool: "ConnPool")
            return loads.count == 1 && abs(loads[0] - 0.5) < 0.01
        }
        try exposeSessions([0, 0])
        try await eventually(timeout: 5, "the metric's fall followed") { try await Self.loads(status: status, pool: "MetricPool").first.map { $0 < 0.01 } ?? false }
        withExtendedLifetime(held) {}
        held = nil   // closes them
        try await eventually(timeout: 5, "the connections' close followed") { try await Self.loads(status: status, pool: "ConnPool").first.map { $0 < 0.01 } ?? false }

        // The metrics endpoint gone: the last load stays, one warning says why.
        metrics.signal(SIGKILL)
        _ = try await byMetric.waitForLine(containing: "cannot read the server's load", timeout: 5)
        #expect(try await Self.loads(status: status, pool: "MetricPool").count == 1, "still registered: the server itself is healthy")
        #expect(byMetric.lines.filter { $0.contains("cannot read the server's load") }.count == 1, "logged once per failing streak")
        withExtendedLifetime([registrar, server, byConnections, byMetric]) {}
    }
}
