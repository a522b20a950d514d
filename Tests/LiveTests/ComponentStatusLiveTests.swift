import Foundation
import ProcessSupport
import Testing

/// Component Status reports read by the real `cspmonitor` of Debian's `rsplib-tools`: the
/// registrar and a PE appear with their addresses and status, and the PE leaves the monitor
/// at once when it shuts down (its final report).
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(2))) struct ComponentStatusLiveTests {
    static var unavailableReason: String? { missingTool("/usr/bin/cspmonitor", package: "rsplib-tools") }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func rsplibsMonitorShowsTheRegistrarAndThePEAndTheFinalReport() async throws {
        let cspPort = try freeLoopbackPort()   // TCP free; the UDP port of the same number is almost surely too
        let monitor = try ChildProcess("cspmonitor", ["-localaddress=127.0.0.1:\(cspPort)", "-updateinterval=300", "-full"],
                                       executable: "/usr/bin/cspmonitor")
        let csp = ["--csp", "127.0.0.1:\(cspPort)", "--csp-interval", "300ms"]
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp"] + csp)
        let ready = try await registrar.waitForReady()
        let asap = try #require(ready["asap"]), id = try #require(ready["id"])
        let pe = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--registrar", asap, "--transport", "tcp", "--policy", "lu", "--load", "0.5"] + csp)
        let peReady = try await pe.waitForReady()
        let peID = try #require(peReady["id"])
        // A proxy PE for a legacy server (Python's http.server), its load from its connections.
        let legacyPort = try freePort()
        let legacy = try ChildProcess("http.server", ["-m", "http.server", "\(legacyPort)", "--bind", "127.0.0.1", "--directory", "/usr/share/doc"],
                                      executable: "/usr/bin/python3")
        let proxy = try liveProcess("proxy-pe", ["pe", "--pool", "WebPool", "--registrar", asap, "--transport", "tcp", "--proxy", "127.0.0.1:\(legacyPort)",
                                                 "--policy", "lu", "--load-connections", "4", "--health-interval", "200ms"] + csp)
        let proxyID = try #require(try await proxy.waitForReady()["id"])
        try await eventually(timeout: 5, "cspmonitor shows the registrar with its address and handlespace, the PE with its load, and the proxy PE") {
            monitor.lines.contains { $0.contains("PR \(id) [ASAP \(asap)]") }
                && monitor.lines.contains { $0.contains("\"2 PEs in 2 Pool(s), 0 Peer(s)\"") }
                && monitor.lines.contains { $0.contains("PE \(peID) [echo ") }
                && monitor.lines.contains { $0.contains("L= 50% \"EchoPool: registered\"") }
                && monitor.lines.contains { $0.contains("PE \(proxyID) [proxy for 127.0.0.1:\(legacyPort)]") }
                && monitor.lines.contains { $0.contains("L=  0% \"WebPool: registered\"") }
        }
        proxy.signal(SIGTERM)
        #expect(try await proxy.waitForExit() == 0)
        withExtendedLifetime(legacy) {}
        pe.signal(SIGTERM)
        #expect(try await pe.waitForExit() == 0)
        let afterExit = monitor.lines.count
        try await eventually(timeout: 3, "the PE's final report removes it from the monitor at once (not after its timeout)") {
            monitor.lines.dropFirst(afterExit).contains { $0.contains("0 PEs") }
        }
        withExtendedLifetime(registrar) {}
    }

    /// A pool user reports its requests and the PE it talks to (shown as its association);
    /// its final report at the end removes it from the monitor.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func rsplibsMonitorShowsAPoolUserWithItsPE() async throws {
        let cspPort = try freeLoopbackPort()
        let monitor = try ChildProcess("cspmonitor", ["-localaddress=127.0.0.1:\(cspPort)", "-updateinterval=200", "-full"],
                                       executable: "/usr/bin/cspmonitor")
        // The registrar reports too: the monitor then keeps printing whole lines after the user has gone.
        let registrar = try await LiveRegistrar.start(extra: ["--csp", "127.0.0.1:\(cspPort)", "--csp-interval", "200ms"])
        let pe = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--registrar", registrar.endpoint, "--transport", "tcp"])
        let peID = try #require(try await pe.waitForReady()["id"])
        try await pe.waitForLine(containing: "registered")
        let user = try liveProcess("pu", ["pu", "--pool", "EchoPool", "--registrar", registrar.endpoint, "--requests", "12", "--interval", "250ms",
                                          "--csp", "127.0.0.1:\(cspPort)", "--csp-interval", "200ms"])
        try await eventually(timeout: 5, "cspmonitor shows the pool user, its requests and its PE") {
            monitor.lines.contains { $0.contains("PU $") && $0.contains("[pool user of EchoPool]") && $0.contains("answered, 0 failed; with PE \(peID)") }
                && monitor.lines.contains { $0.contains("-> PE \(peID)") }
        }
        #expect(try await user.waitForExit(timeout: 10) == 0)
        let afterExit = monitor.lines.count
        try await eventually(timeout: 3, "the final report removes the pool user at once") {
            monitor.lines.dropFirst(afterExit).contains { $0.contains("0 PUs") }
        }
    }

    /// CalcApp's pool users report too: their requests, and the PE that handled them as an
    /// association.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func rsplibsMonitorShowsCalcAppPoolUsersAndThePEThatServedThem() async throws {
        let cspPort = try freeLoopbackPort()
        let monitor = try ChildProcess("cspmonitor", ["-localaddress=127.0.0.1:\(cspPort)", "-updateinterval=200", "-full"],
                                       executable: "/usr/bin/cspmonitor")
        let registrar = try await LiveRegistrar.start(extra: ["--csp", "127.0.0.1:\(cspPort)", "--csp-interval", "200ms"])
        let pe = try liveProcess("calcapp-pe", ["calcapp-pe", "--registrar", registrar.endpoint, "--capacity", "1000000"])
        let peID = try #require(try await pe.waitForReady()["id"])
        try await pe.waitForLine(containing: "registered")
        let users = try liveProcess("calcapp-pu", ["calcapp-pu", "--registrar", registrar.endpoint, "--users", "2", "--constant",
                                                   "--request-size", "100000", "--inter-arrival", "300ms", "--duration", "3s", "--drain", "5s",
                                                   "--csp", "127.0.0.1:\(cspPort)", "--csp-interval", "200ms"])
        try await eventually(timeout: 6, "cspmonitor shows the CalcApp users, their requests and the PE that served them") {
            monitor.lines.contains { $0.contains("PU $") && $0.contains("[CalcApp pool users of CalcAppPool]") && $0.contains("2 user(s):") && !$0.contains(" 0 completed") }
                && monitor.lines.contains { $0.contains("-> PE \(peID)") }
        }
        #expect(try await users.waitForExit(timeout: 15) == 0, "\(users.lines.suffix(3))")
        let afterExit = monitor.lines.count
        try await eventually(timeout: 3, "the final report removes them at once") {
            monitor.lines.dropFirst(afterExit).contains { $0.contains("0 PUs") }
        }
        withExtendedLifetime(pe) {}
    }
}
