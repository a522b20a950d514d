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
}
