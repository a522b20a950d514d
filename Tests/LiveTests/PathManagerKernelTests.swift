import Foundation
import ProcessSupport
import Testing

/// EdgePool's netlink layer against the running kernel's mptcp_pm family, in a namespace the
/// test creates (and removes): `ip mptcp endpoint show` is the independent witness.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct PathManagerKernelTests {
    @Test(.enabled(if: TestNamespace.unavailableReason == nil, "\(TestNamespace.unavailableReason ?? "")"))
    func endpointsAreAddedChangedAndDeletedThroughNetlink() async throws {
        let (a, b) = try await TestNamespace.pair()   // a: 10.77.0.1 on va (b holds the veth's other end)
        defer { withExtendedLifetime(b) {} }
        func edgepool(_ arguments: [String]) async throws -> (status: Int32, lines: [String]) {
            let process = try a.edgepool("paths", ["paths"] + arguments)
            let status = try await process.waitForExit()
            return (status, process.lines)
        }
        func witness() async throws -> [String] {
            let process = try a.run("ip-mptcp", TestNamespace.ipTool!, ["mptcp", "endpoint", "show"])
            _ = try await process.waitForExit()
            return process.lines.filter { !$0.isEmpty }
        }
        let add = try await edgepool(["endpoint", "add", "10.77.0.1", "--id", "7", "--flags", "subflow,backup", "--dev", "va"])
        #expect(add.status == 0, "\(add.lines)")
        let added = try await witness()
        #expect(added.count == 1 && added[0].contains("10.77.0.1 id 7 subflow backup dev va"), "\(added)")
        let listed = try await edgepool(["endpoints"])
        #expect(listed.status == 0 && listed.lines.contains("id 7 10.77.0.1 subflow,backup dev va"), "our decoding of the kernel's dump: \(listed.lines)")
        // MP_PRIO: the backup flag cleared.
        #expect(try await edgepool(["endpoint", "backup", "7", "--off"]).status == 0)
        let changed = try await witness()
        #expect(changed.count == 1 && changed[0].contains("id 7 subflow dev va"), "\(changed)")
        // The kernel's refusal comes back with its reason.
        let duplicate = try await edgepool(["endpoint", "add", "10.77.0.1", "--id", "7"])
        #expect(duplicate.status != 0 && duplicate.lines.contains { $0.contains("the kernel refused") }, "\(duplicate.lines)")
        #expect(try await edgepool(["endpoint", "delete", "7"]).status == 0)
        let deleted = try await witness()
        #expect(deleted.isEmpty, "\(deleted)")
        let missing = try await edgepool(["endpoint", "delete", "7"])
        #expect(missing.status != 0 && missing.lines.contains { $0.contains("the kernel refused") }, "\(missing.lines)")
    }
}

/// A path's egress cap (`rate=`): tc's token bucket on the path's interface while the path
/// manager runs, the kernel's default qdisc again after it; a qdisc somebody else put there is
/// left alone and the daemon says why it does not start. tc itself and a real download are
/// the witnesses.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(5))) struct PathRateCapTests {
    static var unavailableReason: String? {
        TestNamespace.unavailableReason ?? missingTool("/usr/bin/curl", package: "curl") ?? (TestNamespace.tcTool == nil ? "needs tc (Debian: iproute2)" : nil)
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aCappedPathSendsAtItsRateAndTheCapGoesWithTheDaemon() async throws {
        let (a, b) = try await TestNamespace.pair()   // b serves, a downloads: b's egress is capped
        func rootQdisc() async throws -> String {
            let show = try b.run("tc", TestNamespace.tcTool!, ["qdisc", "show", "dev", "vb", "root"])
            _ = try await show.waitForExit()
            return show.lines.first ?? ""
        }
        #expect(try await rootQdisc().contains(" 0: root"), "the kernel's default at first")
        let origin = try b.run("origin", "/usr/bin/python3", [Origin.script, "0.0.0.0", "0"])
        let port = try #require(try await origin.waitForLine(containing: "origin listening on").split(separator: ":").last.flatMap { Int($0) })
        let paths = try b.edgepool("paths", ["paths", "run", "--path", "vb=10.77.0.2,noprobe,rate=8mbit", "--log-level", "info"])
        let ready = try await paths.waitForReady()
        #expect(ready["managing"] == "vb 10.77.0.2 id 1 active capped 8 Mbit/s", "\(ready)")
        let capped = try await rootQdisc()
        #expect(capped.contains("tbf edc0: root") && capped.contains("rate 8Mbit"), "\(capped)")
        let download = try a.run("curl", "/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{speed_download}\n", "http://10.77.0.2:\(port)/bytes/4000000"])
        #expect(try await download.waitForExit(timeout: 30) == 0, "\(download.lines)")
        let rate = try #require(download.lines.last.flatMap { Double($0) }) * 8
        print("rate cap: 8 Mbit/s set, \(String(format: "%.2f", rate / 1e6)) Mbit/s measured (4 MB download)")
        #expect(rate > 6_000_000 && rate < 8_800_000, "the download runs at the cap: \(rate) bit/s")
        paths.signal(SIGTERM)
        #expect(try await paths.waitForExit() == 0)
        #expect(try await rootQdisc().contains(" 0: root"), "the default is back")

        // Somebody else's shaper stays, and the daemon says why it does not start.
        try await b.tc(["qdisc", "add", "dev", "vb", "root", "tbf", "rate", "20mbit", "burst", "32kb", "latency", "50ms"])
        let theirs = try await rootQdisc()
        let refused = try b.edgepool("paths-refused", ["paths", "run", "--path", "vb=10.77.0.2,noprobe,rate=8mbit"])
        #expect(try await refused.waitForExit() != 0)
        #expect(refused.lines.contains { $0.contains("already has a root qdisc of its own (tbf") && $0.contains("tc qdisc del dev vb root") }, "\(refused.lines)")
        #expect(try await rootQdisc() == theirs, "untouched")
        withExtendedLifetime(origin) {}
    }
}

/// The path manager with a real MPTCP transfer between two namespaces joined by two links.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct PathManagerDaemonTests {
    static var unavailableReason: String? {
        TestNamespace.unavailableReason ?? missingTool("/usr/bin/mptcpize", package: "mptcpize") ?? missingTool("/usr/bin/curl", package: "curl")
            ?? missingTool("/usr/bin/promtool", package: "prometheus")
    }

    /// An MPTCP origin in `server` (a plain-TCP server makes every connection fall back) and
    /// the kernel's witness of every subflow there: `ip mptcp monitor`, line-buffered (or
    /// nothing arrives before it exits).
    static func originAndMonitor(on server: TestNamespace) async throws -> (origin: ChildProcess, port: Int, monitor: ChildProcess) {
        let origin = try server.run("origin", "/usr/bin/mptcpize", ["run", "/usr/bin/python3", Origin.script, "0.0.0.0", "0"])
        let line = try await origin.waitForLine(containing: "origin listening on")
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })
        let monitor = try server.run("mptcp-monitor", "/usr/bin/stdbuf", ["-oL", TestNamespace.ipTool!, "mptcp", "monitor"])
        return (origin, port, monitor)
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aPathThatReturnsGetsAFreshSubflowAndNoByteIsLost() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let (originProcess, originPort, monitor) = try await Self.originAndMonitor(on: server)
        // The client's MP_JOIN counters are the other witness.
        func joinsAnswered() async throws -> Int {
            let nstat = try client.run("nstat", "/usr/bin/nstat", ["-az", "MPTcpExtMPJoinSynAckRx"])
            _ = try await nstat.waitForExit()
            return nstat.lines.compactMap { line in line.hasPrefix("MPTcpExtMPJoinSynAckRx") ? line.split(separator: " ").dropFirst().first.flatMap { Int($0) } : nil }.first ?? -1
        }
        let statusPort = try freePort()
        let paths = try client.edgepool("paths", ["paths", "run", "--path", "c2=10.78.2.1,noprobe", "--log-level", "info", "--status", "127.0.0.1:\(statusPort)"])
        let ready = try await paths.waitForReady()
        #expect(ready["managing"] == "c2 10.78.2.1 id 1 active", "\(ready)")
        let size = 120_000_000   // two 40 Mbit/s links: about 12 s
        let file = temporaryFile("paths")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "-o", file, "http://10.78.1.2:\(originPort)/bytes/\(size)"])
        try await Task.sleep(for: .seconds(2))
        #expect(try await joinsAnswered() >= 1, "the second subflow at the start")
        try await client.ip(["link", "set", "c2", "down"])
        _ = try await paths.waitForLine(containing: "path retired", timeout: 2)
        func status() async throws -> [String] {
            try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, edgepoolBinary, "paths", "status",
                                                         "--status", "127.0.0.1:\(statusPort)"]).output
        }
        try await eventually(timeout: 1, "`paths status` shows the path down and why") {
            try await status().contains { $0.contains("c2") && $0.contains("down (link down)") && $0.contains("retired 1×") }
        }
        try await Task.sleep(for: .seconds(6))
        let beforeReturn = monitor.lines.filter { $0.contains("SF_ESTABLISHED") && $0.contains("10.78.2.1") }.count
        let joinsBeforeReturn = try await joinsAnswered()
        try await client.ip(["link", "set", "c2", "up"])
        let returned = Date()
        // The kernel deleted the per-source route with the link: the path manager puts it back.
        _ = try await paths.waitForLine(containing: "routes restored", timeout: 2)
        let table = try client.run("ip-route", TestNamespace.ipTool!, ["route", "show", "table", "102"])
        _ = try await table.waitForExit()
        #expect(table.lines.contains { $0.contains("10.78.1.0/24 dev c2") }, "\(table.lines)")
        _ = try await paths.waitForLine(containing: "path restored", timeout: 3)
        try await eventually(timeout: 3, "a fresh subflow from 10.78.2.1 after the return (the client's MP_JOIN answered)") {
            try await joinsAnswered() > joinsBeforeReturn
        }
        try await eventually(timeout: 3, "the server's monitor shows it established") {
            monitor.lines.filter { $0.contains("SF_ESTABLISHED") && $0.contains("10.78.2.1") }.count > beforeReturn
        }
        let subflowAfter = Date().timeIntervalSince(returned)
        let shown = try await status()
        #expect(shown.first?.hasPrefix("in-kernel PM: 1 of 1 path(s) in use") == true, "\(shown)")
        #expect(shown.contains { $0.contains("c2") && $0.contains("in use for") && $0.contains("restored 2×") }, "\(shown)")
        print("path manager: a fresh subflow on the returned path \(String(format: "%.2f", subflowAfter)) s after the link came back")
        #expect(subflowAfter < 1.5, "the path carries a subflow again within 1.5 s of its return (kernel PM alone: never re-created)")
        #expect(try await curl.waitForExit(timeout: 90) == 0, "\(curl.lines.suffix(3))")
        // Its metrics say the same, and pass Prometheus's linter.
        let scrape = try client.run("scrape", "/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"])
        _ = try await scrape.waitForExit()
        let metrics = scrape.lines.joined(separator: "\n") + "\n"
        #expect(metrics.contains(#"edgepool_paths_retirements_total{path="c2"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"edgepool_paths_restorations_total{path="c2"} 2"#), "at the start and after the return: \(metrics)")
        #expect(metrics.contains(#"edgepool_paths_in_use{path="c2"} 1"#), "\(metrics)")
        let metricsFile = temporaryFile("paths-metrics")
        try metrics.write(toFile: metricsFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: metricsFile) }
        let lint = try await runCommand("/bin/sh", ["-c", "/usr/bin/promtool check metrics < \(metricsFile)"])
        #expect(lint.status == 0 && lint.output.isEmpty, "\(lint.output)")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(originPort)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        paths.signal(SIGTERM)
        #expect(try await paths.waitForExit() == 0)
        let endpoints = try client.run("ip-mptcp", TestNamespace.ipTool!, ["mptcp", "endpoint", "show"])
        _ = try await endpoints.waitForExit()
        #expect(endpoints.lines.contains { $0.contains("10.78.2.1") }, "the endpoint is left for the kernel's PM: \(endpoints.lines)")
        withExtendedLifetime(originProcess) {}
    }

    /// Userspace mode with link 2 as a backup path: its subflow is there from the start but
    /// carries (almost) nothing while link 1 works, carries the download while link 1 is down,
    /// and stands by again when link 1 is back. The server's kernel is the witness of every
    /// priority change (its `ip mptcp monitor`: the MP_JOIN's backup bit, then MP_PRIO).
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aBackupPathCarriesTheDownloadOnlyWhileTheActiveOneIsDown() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let (originProcess, originPort, monitor) = try await Self.originAndMonitor(on: server)
        func received(on device: String) async throws -> Int {
            let read = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "cat", "/sys/class/net/\(device)/statistics/rx_bytes"])
            return read.output.first.flatMap { Int($0) } ?? -1
        }
        func link2Events(_ kind: String) -> [String] { monitor.lines.filter { $0.contains(kind) && $0.contains("10.78.2.1") } }

        let paths = try client.edgepool("paths", ["paths", "run", "--userspace", "--path", "c1=10.78.1.1,noprobe",
                                                  "--path", "c2=10.78.2.1,noprobe,backup", "--log-level", "debug"])
        let ready = try await paths.waitForReady()
        #expect(ready["managing"] == "c1 10.78.1.1 id 1 active, c2 10.78.2.1 id 2 backup (userspace PM)", "\(ready)")
        let size = 90_000_000   // one 40 Mbit/s link: about 18 s
        let file = temporaryFile("paths-backup")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "-o", file, "http://10.78.1.2:\(originPort)/bytes/\(size)"])
        try await eventually(timeout: 3, "the backup path's subflow is established, as backup") {
            link2Events("SF_ESTABLISHED").contains { $0.contains("backup=1") }
        }
        try await Task.sleep(for: .seconds(1))
        let (standby1, active1) = (try await received(on: "c2"), try await received(on: "c1"))
        try await Task.sleep(for: .seconds(2))
        let (standby2, active2) = (try await received(on: "c2"), try await received(on: "c1"))
        print("backup path: standing by, link 2 received \(standby2 - standby1) bytes in 2 s, link 1 \(active2 - active1)")
        #expect(active2 - active1 > 5_000_000, "link 1 carries the download")
        #expect(standby2 - standby1 < (active2 - active1) / 20, "the backup path carries almost nothing while link 1 works")

        try await client.ip(["link", "set", "c1", "down"])
        _ = try await paths.waitForLine(containing: "path retired", timeout: 2)
        try await eventually(timeout: 2, "the backup's subflow is promoted (the server hears MP_PRIO without the backup bit)") {
            link2Events("SF_PRIO").contains { $0.contains("backup=0") }
        }
        // Link 1 carried the first subflow, which is kept (not closed): the server sends into it
        // until its retransmission timer gives up, so the backup's share is measured after that.
        try await Task.sleep(for: .seconds(3))
        let standingIn1 = try await received(on: "c2")
        try await Task.sleep(for: .seconds(2))
        let standingIn2 = try await received(on: "c2")
        print("backup path: standing in, link 2 received \(standingIn2 - standingIn1) bytes in 2 s")
        #expect(standingIn2 - standingIn1 > 5_000_000, "the backup path carries the download while link 1 is down")

        let promotions = link2Events("SF_PRIO").count
        try await client.ip(["link", "set", "c1", "up"])
        _ = try await paths.waitForLine(containing: "path restored", timeout: 3)
        try await eventually(timeout: 3, "a fresh subflow from link 1 beside the stuck first one (make before break)") {
            monitor.lines.contains { $0.contains("SF_ESTABLISHED") && $0.contains("daddr4=10.78.1.1") }
        }
        try await eventually(timeout: 3, "the backup path stands by again (MP_PRIO with the backup bit)") {
            link2Events("SF_PRIO").dropFirst(promotions).contains { $0.contains("backup=1") }
        }
        #expect(try await curl.waitForExit(timeout: 90) == 0, "\(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(originPort)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        paths.signal(SIGTERM)
        #expect(try await paths.waitForExit() == 0)
        withExtendedLifetime(originProcess) {}
    }

    /// A path whose link flaps every 200 ms for 10 s (userspace mode): the download loses no
    /// byte and its connection survives, and the path manager damps the flapping — at most one
    /// subflow creation per path per 500 ms (`minimumRestoreInterval`), counted in its metrics.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aFlappingPathIsDampedAndTheDownloadLosesNothing() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let (originProcess, originPort, monitor) = try await Self.originAndMonitor(on: server)
        let statusPort = try freePort()
        let paths = try client.edgepool("paths", ["paths", "run", "--userspace", "--path", "c1=10.78.1.1,noprobe", "--path", "c2=10.78.2.1,noprobe",
                                                  "--status", "127.0.0.1:\(statusPort)"])
        _ = try await paths.waitForReady()
        let size = 100_000_000
        let file = temporaryFile("paths-flap")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "-o", file, "http://10.78.1.2:\(originPort)/bytes/\(size)"])
        try await Task.sleep(for: .seconds(1))
        func created() async throws -> Int {
            let scrape = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(statusPort)/metrics"])
            return scrape.output.first { $0.hasPrefix("edgepool_paths_subflows_created_total") }.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
        }
        let before = try await created()
        let started = Date()
        var up = true
        while Date().timeIntervalSince(started) < 10 {
            up.toggle()
            try await client.ip(["link", "set", "c2", up ? "up" : "down"])
            try await Task.sleep(for: .milliseconds(200))
        }
        if !up { try await client.ip(["link", "set", "c2", "up"]) }
        try await Task.sleep(for: .seconds(1))
        let creations = try await created() - before
        print("flapping path: \(creations) subflow creation(s) in 10 s of 200 ms flaps")
        #expect(monitor.lines.contains { $0.contains("REMOVED") && $0.contains("remid=2") },
                "the server heard that link 2's address was gone (RM_ADDR over link 1): \(monitor.lines.suffix(5))")
        #expect(creations <= 21, "at most one creation per 500 ms (plus the one after the last flap): \(creations)")
        #expect(try await curl.waitForExit(timeout: 120) == 0, "the connection survived: \(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(originPort)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        paths.signal(SIGTERM)
        #expect(try await paths.waitForExit() == 0)
        withExtendedLifetime(originProcess) {}
    }

    /// The path manager killed mid-run (SIGKILL: no hand-back) and started again: the running
    /// download goes on meanwhile with the subflows it has; the new daemon finds its connection
    /// through sock_diag and manages it — a lost path's subflow is retired (the server hears
    /// RM_ADDR), and the returned path gets a fresh one. Without the pick-up the new daemon
    /// would know no connection and do neither.
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aRestartedPathManagerPicksUpTheConnectionsItManaged() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let (originProcess, originPort, monitor) = try await Self.originAndMonitor(on: server)
        let arguments = ["paths", "run", "--userspace", "--path", "c1=10.78.1.1,noprobe", "--path", "c2=10.78.2.1,noprobe", "--log-level", "info"]
        let first = try client.edgepool("paths", arguments)
        #expect(try await first.waitForReady()["picked_up"] == "0")
        let size = 120_000_000
        let file = temporaryFile("paths-restart")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "-o", file, "http://10.78.1.2:\(originPort)/bytes/\(size)"])
        func link2Established() -> Int { monitor.lines.filter { $0.contains("SF_ESTABLISHED") && $0.contains("10.78.2.1") }.count }
        try await eventually(timeout: 3, "the first daemon gave the download a subflow on link 2") { link2Established() >= 1 }
        first.signal(SIGKILL)
        _ = try await first.waitForExit()
        try await Task.sleep(for: .milliseconds(500))
        let second = try client.edgepool("paths-restarted", arguments)
        let ready = try await second.waitForReady()
        #expect(ready["picked_up"] == "1", "the download's connection, found through sock_diag: \(ready) \(second.lines)")
        let established = link2Established()
        try await client.ip(["link", "set", "c2", "down"])
        _ = try await second.waitForLine(containing: "path retired", timeout: 2)
        try await eventually(timeout: 2, "the server heard that link 2's address is gone (RM_ADDR from the restarted daemon)") {
            monitor.lines.contains { $0.contains("REMOVED") && $0.contains("remid=2") }
        }
        try await Task.sleep(for: .seconds(1))
        try await client.ip(["link", "set", "c2", "up"])
        _ = try await second.waitForLine(containing: "path restored", timeout: 3)
        try await eventually(timeout: 3, "a fresh subflow on link 2 after its return") { link2Established() > established }
        #expect(try await curl.waitForExit(timeout: 90) == 0, "\(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(originPort)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        withExtendedLifetime(originProcess) {}
    }

    /// Link 2's interface renumbered twice during a download (userspace mode): first the old
    /// address removed and a new one added (the routes through the link go with its last
    /// address; the path manager puts them back), then a new one added before the old one
    /// goes. Each time the old address's subflow is retired (the server hears RM_ADDR), a
    /// fresh one comes from the new address, and no byte is lost. Per-source routing rules
    /// for the new addresses are the network's (here the test's, as a DHCP hook's would be).
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func aRenumberedPathGetsSubflowsFromItsNewAddress() async throws {
        let (client, server) = try await TestNamespace.multipath()
        let (originProcess, originPort, monitor) = try await Self.originAndMonitor(on: server)
        let statusPort = try freePort()
        let paths = try client.edgepool("paths", ["paths", "run", "--userspace", "--path", "c1=10.78.1.1,noprobe", "--path", "c2=auto,noprobe",
                                                  "--log-level", "info", "--status", "127.0.0.1:\(statusPort)"])
        let ready = try await paths.waitForReady()
        #expect(ready["managing"] == "c1 10.78.1.1 id 1 active, c2 10.78.2.1 id 2 active (userspace PM)", "c2=auto found the interface's address: \(ready)")
        let size = 150_000_000
        let file = temporaryFile("paths-renumber")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try client.run("curl", "/usr/bin/mptcpize", ["run", "/usr/bin/curl", "-sS", "-o", file, "http://10.78.1.2:\(originPort)/bytes/\(size)"])
        func established(from address: String) -> Int { monitor.lines.filter { $0.contains("SF_ESTABLISHED") && $0.contains("daddr4=\(address) ") }.count }
        try await eventually(timeout: 3, "a subflow from link 2's first address") { established(from: "10.78.2.1") >= 1 }

        // Break before make: the old address goes, then the new one comes.
        try await client.ip(["addr", "del", "10.78.2.1/24", "dev", "c2"])
        _ = try await paths.waitForLine(containing: "path retired", timeout: 2)
        try await eventually(timeout: 2, "the server heard that 10.78.2.1 is gone (RM_ADDR over link 1)") {
            monitor.lines.contains { $0.contains("REMOVED") && $0.contains("remid=2") }
        }
        try await client.ip(["rule", "add", "from", "10.78.2.7", "table", "102"])
        try await client.ip(["addr", "add", "10.78.2.7/24", "dev", "c2"])
        _ = try await paths.waitForLine(containing: "path renumbered", timeout: 2)
        try await eventually(timeout: 3, "a fresh subflow from the new address 10.78.2.7") { established(from: "10.78.2.7") >= 1 }

        // Make before break: the next address is there before the old one goes.
        try await client.run("sysctl", "/usr/sbin/sysctl", ["-qw", "net.ipv4.conf.c2.promote_secondaries=1"]).waitForExit()
        try await client.ip(["rule", "add", "from", "10.78.2.9", "table", "102"])
        try await client.ip(["addr", "add", "10.78.2.9/24", "dev", "c2"])
        try await Task.sleep(for: .milliseconds(300))
        #expect(established(from: "10.78.2.9") == 0, "an address beside the path's own changes nothing")
        try await client.ip(["addr", "del", "10.78.2.7/24", "dev", "c2"])
        try await eventually(timeout: 3, "a fresh subflow from 10.78.2.9 once 10.78.2.7 is gone") { established(from: "10.78.2.9") >= 1 }

        #expect(try await curl.waitForExit(timeout: 90) == 0, "\(curl.lines.suffix(3))")
        let expected = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", server.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(originPort)/sha/\(size)"]).output.last
        #expect(try await sha256(ofFile: file) == expected, "byte-exact")
        let scrape = try await runCommand(TestNamespace.ipTool!, ["netns", "exec", client.name, "/usr/bin/curl", "-sS", "http://127.0.0.1:\(statusPort)/metrics"])
        #expect(scrape.output.contains(#"edgepool_paths_renumberings_total{path="c2"} 2"#), "\(scrape.output)")
        paths.signal(SIGTERM)
        #expect(try await paths.waitForExit() == 0)
        withExtendedLifetime(originProcess) {}
    }
}
