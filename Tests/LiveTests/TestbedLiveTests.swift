import Foundation
import TestbedRunner
import Testing

/// `edgepool testbed` with real namespaces: the shipped two-ISP topology comes up, MPTCP
/// aggregates both ISPs, survives losing one, and `down` leaves nothing behind; a topology
/// that fails half-way is removed again.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct TestbedLiveTests {
    static var unavailableReason: String? {
        TestNamespace.unavailableReason ?? missingTool("/usr/bin/mptcpize", package: "mptcpize") ?? missingTool("/usr/bin/curl", package: "curl")
    }

    /// The shipped topology under a name of this test run's own.
    static func topologyFile(named name: String) throws -> String {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Topologies/two-isp.topo"), encoding: .utf8)
            .replacingOccurrences(of: "topology two-isp", with: "topology \(name)")
        let path = temporaryFile("topology") + ".topo"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs a shipped scenario on its shipped topology under a name of this test's own,
    /// shortened to `phaseSeconds`; expects it to finish and to remove its testbed. Returns the
    /// report directory and its summary (also printed).
    static func runShippedScenario(_ scenarioName: String, topology topologyName: String = "two-isp", as name: String,
                                   phaseSeconds: Int, timeout: Double = 120) async throws -> (directory: String, summary: String) {
        let topologyText = try String(contentsOf: packageRoot.appendingPathComponent("Topologies/\(topologyName).topo"), encoding: .utf8)
            .replacingOccurrences(of: "topology \(topologyName)\n", with: "topology \(name)\n")
        let topology = temporaryFile("topology") + ".topo"
        try topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
        let scenario = temporaryFile("scenario") + ".scenario"
        try String(contentsOf: packageRoot.appendingPathComponent("Scenarios/\(scenarioName).scenario"), encoding: .utf8)
            .replacingOccurrences(of: "topology ../Topologies/\(topologyName).topo", with: "topology \(topology)")
            .write(toFile: scenario, atomically: true, encoding: .utf8)
        let out = temporaryFile("results")
        defer { forceDown(name) }
        let run = try await runEdgepool(["testbed", "run", scenario, "--phase-seconds", "\(phaseSeconds)", "--out", out], timeout: timeout)
        #expect(run.status == 0, "\(run.output.suffix(20).joined(separator: "\n"))")
        #expect(try await namespaces("ept-\(name)-").isEmpty, "the run removed its testbed")
        let directory = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first.map { out + "/" + $0 })
        let summary = try String(contentsOfFile: directory + "/summary.md", encoding: .utf8)
        print(summary)
        return (directory, summary)
    }

    static func namespaces(_ prefix: String) async throws -> [String] {
        try await runCommand(TestNamespace.ipTool!, ["netns", "list"]).output.compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(prefix) }
    }

    /// Downloads /bytes/SIZE from the server host's origin with curl in the client host.
    static func download(_ name: String, size: Int, mptcp: Bool, during: (@Sendable () async throws -> Void)? = nil) async throws
        -> (bytesPerSecond: Double, sha: String) {
        let file = temporaryFile("testbed")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = ["curl", "-sS", "-o", file, "-w", "%{speed_download}", "http://10.81.2.1:8000/bytes/\(size)"]
        let process = try liveProcess("curl", ["testbed", "exec", name, "client", "--"] + (mptcp ? ["mptcpize", "run"] : []) + curl)
        try await during?()
        let status = try await process.waitForExit(timeout: 90)
        #expect(status == 0, "\(process.lines.suffix(3))")
        return (Double(process.lines.last ?? "") ?? 0, try await sha256(ofFile: file))
    }

    @Test(.enabled(if: (Self.unavailableReason) == nil, "\((Self.unavailableReason) ?? "")"))
    func twoISPsAggregateSurviveALossAndLeaveNothingBehind() async throws {
        let name = "t\(getpid() % 100_000)"
        let file = try Self.topologyFile(named: name)
        let up = try await runEdgepool(["testbed", "up", file])
        defer { Self.forceDown(name) }
        #expect(up.status == 0, "\(up.output)")
        #expect(try await Self.namespaces("ept-\(name)-").count == 4)

        let origin = try liveProcess("origin", ["testbed", "exec", name, "server", "--", "mptcpize", "run", "/usr/bin/python3", Origin.script, "0.0.0.0", "8000"])
        try await origin.waitForLine(containing: "origin listening on")
        let size = 20_000_000
        func sha(_ size: Int) async throws -> String? {
            try await runCommand(edgepoolBinary, ["testbed", "exec", name, "client", "--", "curl", "-sS", "http://10.81.2.1:8000/sha/\(size)"]).output.last
        }
        let expected = try await sha(size)
        let expectedLossy = try #require(try await sha(30_000_000))

        let single = try await Self.download(name, size: size, mptcp: false)
        let both = try await Self.download(name, size: size * 2, mptcp: true)
        print(String(format: "testbed two ISPs of 40 Mbit/s: TCP %.1f Mbit/s, MPTCP %.1f Mbit/s (%.2f×)",
                     single.bytesPerSecond * 8 / 1e6, both.bytesPerSecond * 8 / 1e6, both.bytesPerSecond / single.bytesPerSecond))
        #expect(single.sha == expected)
        #expect(both.bytesPerSecond >= 1.7 * single.bytesPerSecond, "MPTCP aggregates both ISPs")

        // ISP 1 fails mid-transfer: the download completes on ISP 2, byte-exact.
        let lossy = try await Self.download(name, size: 30_000_000, mptcp: true) {
            try await Task.sleep(for: .milliseconds(1500))
            let cut = try await runCommand(TestNamespace.ipTool!, ["-n", "ept-\(name)-client", "link", "set", "dev", "wan1", "down"])
            #expect(cut.status == 0)
        }
        #expect(lossy.sha == expectedLossy, "byte-exact after ISP 1 went down")

        let down = try await runEdgepool(["testbed", "down", name])
        #expect(down.status == 0)
        #expect(try await Self.namespaces("ept-\(name)-").isEmpty, "nothing left behind")
        _ = try await origin.waitForExit(timeout: 5)   // killed with its namespace
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func aTopologyThatFailsHalfWayIsRemovedAndBadFilesNameTheLine() async throws {
        let name = "f\(getpid() % 100_000)"
        // Parses, but the route's gateway is on no connected network: `ip route` refuses it late in the plan.
        let file = temporaryFile("broken") + ".topo"
        try """
        topology \(name)
        host a
        host b
        link a:x=10.90.0.1/24 b:y=10.90.0.2/24 rate=10mbit
        route a 10.91.0.0/24 via 10.99.0.1
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await runEdgepool(["testbed", "up", file])
        defer { Self.forceDown(name) }
        #expect(result.status != 0)
        #expect(result.output.contains { $0.contains("removed what was created") })
        #expect(try await Self.namespaces("ept-\(name)-").isEmpty)

        let bad = temporaryFile("bad") + ".topo"
        try "host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24 rate=fast\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await runEdgepool(["testbed", "up", bad])
        #expect(refused.status != 0)
        #expect(refused.output.contains { $0.contains("line 3: rate 'fast' is not a rate") })
    }

    /// Removes a test's namespaces whatever happened (also when the test failed early), with
    /// the runner's own teardown (processes first).
    static func forceDown(_ name: String) {
        Teardown.remove(topology: name)
    }
}

/// The ISP-failover experiment, shortened (phases of 3 s instead of 25 s), as CI runs it.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct ISPFailoverScenarioTests {
    /// End-to-end MPTCP, and plain TCP carried by EdgePool's entry/exit gateways over MPTCP.
    /// And the same over IPv6 only (bulk end to end, a video stream through the gateways).
    /// (The IPv6 scenario's video needs ffmpeg: the whole set is enabled only with it.)
    @Test(.enabled(if: (TestNamespace.unavailableReason ?? missingTool("/usr/bin/ffmpeg", package: "ffmpeg")) == nil,
                   "\((TestNamespace.unavailableReason ?? missingTool("/usr/bin/ffmpeg", package: "ffmpeg")) ?? "")"),
          arguments: [("isp-failover", "two-isp"), ("isp-failover-gateway", "two-isp"), ("isp-failover-v6", "two-isp-v6")])
    func bulkTrafficSurvivesEachISPFailingWithNoByteLost(scenarioName: String, topologyName: String) async throws {
        let name = "s\(getpid() % 100_000)\(scenarioName.count % 10)"
        let (directory, summary) = try await TestbedLiveTests.runShippedScenario(scenarioName, topology: topologyName, as: name, phaseSeconds: 3)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: directory))
        #expect(files.isSuperset(of: ["interfaces.csv", "flows.csv", "summary.md"]) && !files.contains("INCOMPLETE"))
        #expect(summary.contains("lost 0, corrupted 0"), "every byte arrived")
        // While ISP 1 is down (phase 2) the traffic runs over ISP 2.
        let phase2 = try #require(summary.split(separator: "\n").first { $0.hasPrefix("| 3.0–6.0 s") })
        let cells = phase2.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let wan2In = try #require(Double(cells[3]))
        #expect(wan2In > 20, "client:wan2 carried \(wan2In) Mbit/s while ISP 1 was down")
    }
}

/// The ISP failover experiment with EdgePool's path manager on the client (`pm=edgepool`).
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct PathManagerScenarioTests {
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func theReturningISPGetsAFreshSubflowAtOnce() async throws {
        let name = "p\(getpid() % 100_000)"
        let (directory, summary) = try await TestbedLiveTests.runShippedScenario("isp-failover-pm", topology: "two-isp-pm", as: name, phaseSeconds: 3)
        #expect(summary.contains("lost 0, corrupted 0"), "every byte arrived")
        // The daemon ran in the client and brought wan1 back after its link returned.
        let log = try String(contentsOfFile: directory + "/paths-client.log", encoding: .utf8)
        #expect(log.contains("edgepool paths ready"), "\(log)")
        let retired = try #require(log.range(of: "path=wan1 reason=link down"), "\(log)")
        #expect(log[retired.upperBound...].contains("path=wan1 role=active [PathManagerService] path restored"), "\(log)")
        // ISP 1 back and ISP 2 down (phase 3): the traffic is on wan1 again.
        let phase3 = try #require(summary.split(separator: "\n").first { $0.hasPrefix("| 6.0–9.0 s") })
        let wan1In = try #require(Double(phase3.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[1]))
        #expect(wan1In > 20, "client:wan1 carried \(wan1In) Mbit/s after ISP 1 returned")
        // Both back (phase 4): wan2 carries again — its fresh subflow goes to the server's
        // announced address, which the in-kernel PM would not re-open.
        let phase4 = try #require(summary.split(separator: "\n").first { $0.hasPrefix("| 9.0–12.0 s") })
        let wan2In = try #require(Double(phase4.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[3]))
        #expect(wan2In > 20, "client:wan2 carried \(wan2In) Mbit/s after ISP 2 returned")
        #expect(log.contains("userspace PM"), "\(log)")
    }
}

/// An ISP that silently drops everything (the emulator's blackhole switch) while its line stays up.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct BlackholeScenarioTests {
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func trafficMovesToTheOtherISPWhileOneIsBlackholed() async throws {
        let (_, summary) = try await TestbedLiveTests.runShippedScenario("isp-blackhole", topology: "two-isp-delay", as: "b\(getpid() % 100_000)",
                                                                         phaseSeconds: 4)
        #expect(summary.contains("lost 0, corrupted 0"))
        let blackholed = try #require(summary.split(separator: "\n").first { $0.hasPrefix("| 4.0–8.0 s") })
        let cells = blackholed.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let wan1 = try #require(Double(cells[1])), wan2 = try #require(Double(cells[3]))
        #expect(wan1 < 5, "ISP 1 carried \(wan1) Mbit/s while blackholed")
        #expect(wan2 > 5, "ISP 2 carried \(wan2) Mbit/s")
    }

    /// The same with EdgePool's path manager probing each ISP (two-isp-delay-pm.topo): the
    /// blackholed path is retired by its probes, and once they are answered again the
    /// connection gets a fresh subflow over ISP 1 — the kernel's PM alone leaves the old one
    /// in retransmission back-off for seconds.
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func thePathManagersProbesRetireTheBlackholedISPAndBringItBackFresh() async throws {
        let (directory, summary) = try await TestbedLiveTests.runShippedScenario("isp-blackhole-pm", topology: "two-isp-delay-pm",
                                                                                 as: "q\(getpid() % 100_000)", phaseSeconds: 4)
        #expect(summary.contains("lost 0, corrupted 0"))
        func cells(_ phase: String) throws -> [String] {
            try #require(summary.split(separator: "\n").first { $0.hasPrefix(phase) }).split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let blackholed = try cells("| 4.0–8.0 s"), restored = try cells("| 8.0–12.0 s")
        let (wan1Blackholed, wan2Blackholed) = (try #require(Double(blackholed[1])), try #require(Double(blackholed[3])))
        #expect(wan1Blackholed < 5, "ISP 1 carried \(wan1Blackholed) Mbit/s while blackholed")
        #expect(wan2Blackholed > 10, "ISP 2 carried \(wan2Blackholed) Mbit/s")
        let wan1Restored = try #require(Double(restored[1]))
        #expect(wan1Restored > 15, "ISP 1 carried \(wan1Restored) Mbit/s in the 4 s after the blackhole ended")
        let log = try String(contentsOfFile: directory + "/paths-client.log", encoding: .utf8)
        let retired = try #require(log.range(of: "path=wan1 reason=3 probes unanswered"), "the probes, not the link, retired it: \(log)")
        #expect(log[retired.upperBound...].contains("path=wan1 role=active [PathManagerService] path restored"), "\(log)")
    }
}

/// The access-aggregation experiment, one short run per path with BBR.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct AccessAggregationTests {
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func everyPathCarriesDataWithNoByteLostAndTheReportIsWritten() async throws {
        if try await TestbedLiveTests.namespaces("ept-agg-").count > 0 {
            Issue.record("a testbed 'agg' is up (another run, or one that was not cleaned up): `edgepool testbed down agg`")
            return
        }
        let out = temporaryFile("aggregation")
        defer { TestbedLiveTests.forceDown("agg") }
        let run = try await runEdgepool(["testbed", "experiment", "access-aggregation", "--seconds", "4", "--repetitions", "1",
                                         "--congestion-controls", "bbr", "--out", out], timeout: 240)
        #expect(run.status == 0, "\(run.output.suffix(10).joined(separator: "\n"))")
        #expect(try await TestbedLiveTests.namespaces("ept-agg-").isEmpty)
        let directory = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first.map { out + "/" + $0 })
        let rows = try String(contentsOfFile: directory + "/runs.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.count == 4)
        var goodput: [String: Double] = [:]
        var latency: [String: Double] = [:]
        for row in rows where row.count >= 8 {
            goodput[row[1]] = Double(row[3])
            latency[row[1]] = Double(row[5])
            #expect(row[4] == "0", "\(row[1]): bytes lost \(row[4])")
            #expect((Int(row[7]) ?? 0) >= 10, "\(row[1]): requests answered under load: \(row[7])")
        }
        print("request latency under load (median ms): \(latency)")
        // The cellular path's 2 × 100 ms one-way delay shows in its request latency.
        #expect((latency["cellular TCP"] ?? 0) > 200, "cellular latency \(latency["cellular TCP"] ?? 0) ms")
        print("access aggregation, BBR, 4 s: \(goodput)")
        #expect(goodput.values.allSatisfy { $0 > 1 }, "every path carried data")
        #expect((goodput["cellular TCP"] ?? 99) < (goodput["Wi-Fi TCP"] ?? 0), "the emulated cellular link is the slower one")
        #expect((goodput["Wi-Fi TCP"] ?? 99) < 20, "Wi-Fi is limited to its 20 Mbit/s")
    }
}

/// The ISP-failover experiment with a live RTMP stream (over MPTCP and through the gateway
/// pair), request/response traffic and a user command, shortened to phases of 5 s.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct LiveVideoScenarioTests {
    @Test(.enabled(if: (TestNamespace.unavailableReason ?? missingTool("/usr/bin/ffmpeg", package: "ffmpeg") ?? missingTool("/usr/bin/mptcpize", package: "mptcpize")) == nil, "\((TestNamespace.unavailableReason ?? missingTool("/usr/bin/ffmpeg", package: "ffmpeg") ?? missingTool("/usr/bin/mptcpize", package: "mptcpize")) ?? "")"))
    func noFrameOrByteIsLostAndTheViewerModelMatchesTheGaps() async throws {
        let (directory, summary) = try await TestbedLiveTests.runShippedScenario("isp-failover-video", as: "v\(getpid() % 100_000)",
                                                                                 phaseSeconds: 5, timeout: 150)
        let lines = summary.split(separator: "\n").map(String.init)
        // Both video flows: every frame and every byte arrived, and the viewer never waited.
        let videos = lines.filter { $0.contains(": video server → client") }
        #expect(videos.count == 2)
        for video in videos {
            let frames = try #require(video.firstMatch(of: /video frames received (\d+) of (\d+) \(lost 0\)/), "\(video)")
            #expect(Int(frames.1)! > 5 * 4 * 20, "about 25 frames per second for 20 s: \(video)")
            #expect(video.contains(", lost 0"), "\(video)")
        }
        // The viewer model against the byte gaps: the viewer can only have waited while no
        // bytes came, so no interruption is longer than the longest gap (give or take the
        // 50 ms progress interval); and a flow that never stopped for as long as the pre-roll
        // while its buffer was full cannot have interrupted much. Whether a viewer is
        // interrupted at all depends on MPTCP's back-off on the returning path (docs/testbed).
        let viewers = lines.filter { $0.hasPrefix("- viewer (64 MiB buffer, 2.0 s pre-roll)") }
        let gaps = lines.compactMap { $0.firstMatch(of: /^- longest gap in received bytes: ([0-9.]+) s/).flatMap { Double($0.1) } }
        #expect(viewers.count == 2 && gaps.count == 2)
        for (viewer, gap) in zip(viewers, gaps) {
            #expect(viewer.contains("playback started at"), "\(viewer)")
            if let longest = viewer.firstMatch(of: /longest ([0-9.]+) s/).flatMap({ Double($0.1) }) {
                #expect(longest <= gap + 0.1, "an interruption of \(longest) s with a longest gap of \(gap) s: \(viewer)")
            } else {
                #expect(viewer.contains("no interruption"), "\(viewer)")
            }
        }
        // Request/response: all answered, none corrupted; one every 100 ms.
        let requests = try #require(lines.first { $0.contains(": requests server → client") })
        let counts = try #require(requests.firstMatch(of: /(\d+) of (\d+) requests answered .* corrupted bytes 0/), "\(requests)")
        #expect(counts.1 == counts.2 && Int(counts.1)! > 150, "\(requests)")
        // The user's command ran in the client's namespace and saw MPTCP subflows there.
        #expect(lines.contains { $0.contains("`ss -Mtin` — exit status 0") })
        let log = try String(contentsOfFile: directory + "/command-1.log", encoding: .utf8)
        #expect(log.contains("tcp-ulp-mptcp"), "ss showed the client's MPTCP subflows")
        #expect(FileManager.default.fileExists(atPath: directory + "/requests.csv"))
    }
}

/// The offloading scenario with a namespace per site and the delays on emulated links.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct OffloadingTestbedTests {
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func everyRequestCompletesAndTheEdgeServesAtLowLoad() async throws {
        if try await TestbedLiveTests.namespaces("ept-offload-").count > 0 {
            Issue.record("a testbed 'offload' is up (another run, or one that was not cleaned up): `edgepool testbed down offload`")
            return
        }
        let out = temporaryFile("offload-testbed")
        defer { TestbedLiveTests.forceDown("offload") }
        let run = try await runEdgepool(["testbed", "experiment", "offloading", "--users", "4", "--duration", "40s", "--repetitions", "1",
                                         "--out", out], timeout: 120)
        #expect(run.status == 0, "\(run.output.suffix(10).joined(separator: "\n"))")
        #expect(try await TestbedLiveTests.namespaces("ept-offload-").isEmpty, "the experiment removed its testbed")
        #expect(run.output.contains { $0.hasPrefix("sites: device on ue") && $0.contains("cloud-far on site3") })
        let summary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
        print(summary)
        let requests = try #require(summary.firstMatch(of: /Requests: (\d+) submitted = (\d+) completed/))
        #expect(requests.1 == requests.2 && Int(requests.1)! > 0, "every request completed")
        // At low load the PLU policy keeps the work at the edge.
        let row = try #require(summary.split(separator: "\n").first { $0.hasPrefix("| 4 |") })
        let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let edge = try #require(Double(cells[2].split(separator: " ")[0]))
        #expect(edge > 0, "edge PEs were busy: \(row)")
        #expect(FileManager.default.fileExists(atPath: out + "/offload.topo"))
    }
}
