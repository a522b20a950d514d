import Foundation
import ProcessSupport
import Testing

/// Server Announces by UDP multicast, inside a namespace of the test's own.
@Suite("Live: registrar discovery by Server Announces", .serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10)))
struct AnnounceLiveTests {
    static let group = "239.0.0.50:3863"

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func poolElementFindsAndSwitchesRegistrarsByAnnounces() async throws {
        let namespace = try await TestNamespace.make()
        let announce = ["--announce", Self.group, "--announce-interface", "127.0.0.1"]
        var first: ChildProcess? = try namespace.edgepool("registrar-1", ["registrar", "--listen", "127.0.0.1:0", "--log-level", "info"] + announce)
        try await first!.waitForReady()

        // No --registrar: the PE knows registrars only from announces.
        let element = try namespace.edgepool("pe", ["pe", "--pool", "AnnouncedPool", "--log-level", "info", "--reregistration-interval", "2s"] + announce)
        try await element.waitForLine(containing: "registrar announced")
        try await element.waitForLine(containing: "registered")
        let identifier = try #require(try await element.waitForReady()["id"])

        let resolver = try namespace.edgepool("resolve", ["resolve", "--pool", "AnnouncedPool"] + announce)
        #expect(try await resolver.waitForExit() == 0, "\(resolver.lines)")
        #expect(resolver.lines.contains { $0.contains(identifier) }, "resolved through an announced registrar: \(resolver.lines)")

        // The registrar dies; a second one announces itself; the PE moves there.
        first!.signal(SIGKILL)
        _ = try await first!.waitForExit()
        first = nil
        let second = try namespace.edgepool("registrar-2", ["registrar", "--listen", "127.0.0.1:0", "--log-level", "info"] + announce)
        try await second.waitForReady()
        try await second.waitForLine(containing: "pe=\(identifier)", timeout: 15)
        let again = try namespace.edgepool("resolve", ["resolve", "--pool", "AnnouncedPool"] + announce)
        _ = try await again.waitForExit()
        #expect(again.lines.contains { $0.contains(identifier) }, "the PE registered with the second registrar: \(again.lines)")
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason ?? (FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") ? nil : "no tshark")) == nil, "\((TestNamespace.unavailableReason ?? (FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") ? nil : "no tshark")) ?? "")"))
    func wiresharkDecodesOurServerAnnounces() async throws {
        let namespace = try await TestNamespace.make()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-announce-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("announce.pcapng").path
        let capturer = try liveProcess("tshark", ["netns", "exec", namespace.name, "/usr/bin/tshark", "-i", "lo", "-f", "udp port 3863", "-w", capture],
                                       executable: TestNamespace.ipTool!)
        try await capturer.waitForLine(containing: "Capturing on")
        let registrar = try namespace.edgepool("registrar", ["registrar", "--listen", "127.0.0.1:0", "--announce", Self.group,
                                                             "--announce-interface", "127.0.0.1", "--identifier", "0x5eed"])
        try await registrar.waitForReady()
        try await Task.sleep(nanoseconds: 2_500_000_000)
        capturer.signal(SIGINT)
        _ = try await capturer.waitForExit()
        let rows = try await runTool("/usr/bin/tshark", ["-r", capture, "-Y", "asap", "-T", "fields",
                                                         "-e", "asap.message_type", "-e", "asap.server_identifier", "-e", "_ws.malformed"])
            .filter { !$0.hasPrefix("Running as") && !$0.isEmpty }
        #expect(rows.count >= 2, "an announce per second: \(rows)")
        #expect(rows.allSatisfy { $0.hasPrefix("10\t0x00005eed") && !$0.contains("Malformed") }, "\(rows)")
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func registrarsFindEachOtherByMulticastPresence() async throws {
        let namespace = try await TestNamespace.make()
        let tsharkPath = "/usr/bin/tshark"
        let hasTshark = FileManager.default.isExecutableFile(atPath: tsharkPath)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-presence-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("presence.pcapng").path
        var capturer: ChildProcess?
        if hasTshark {
            capturer = try liveProcess("tshark", ["netns", "exec", namespace.name, tsharkPath, "-i", "lo", "-f", "udp port 9901", "-w", capture],
                                       executable: TestNamespace.ipTool!)
            try await capturer!.waitForLine(containing: "Capturing on")
            try await Task.sleep(nanoseconds: 500_000_000)  // dumpcap may still be opening the interface
        } else {
            // The registrars are checked either way; only the second witness is missing.
            FileHandle.standardError.write(Data("registrarsFindEachOtherByMulticastPresence: no tshark, the capture check is left out (Debian package tshark)\n".utf8))
        }
        let discovery = ["--enrp-announce", "239.0.0.51:9901", "--announce-interface", "127.0.0.1", "--peer-heartbeat-interval", "500ms"]
        let one = try namespace.edgepool("registrar-1", ["registrar", "--identifier", "0x51", "--listen", "127.0.0.1:3863",
                                                         "--enrp-listen", "127.0.0.1:9911", "--log-level", "info"] + discovery)
        let two = try namespace.edgepool("registrar-2", ["registrar", "--identifier", "0x52", "--listen", "127.0.0.1:3864",
                                                         "--enrp-listen", "127.0.0.1:9912", "--log-level", "info"] + discovery)
        try await one.waitForReady()
        try await two.waitForReady()
        try await two.waitForLine(containing: "peer registrar up", timeout: 10)
        let element = try namespace.edgepool("pe", ["pe", "--pool", "FoundPool", "--registrar", "127.0.0.1:3863"])
        let identifier = try #require(try await element.waitForReady()["id"])
        try await eventually(timeout: 10, "the PE registered at the first registrar is resolvable at the second") {
            let resolver = try namespace.edgepool("resolve", ["resolve", "--pool", "FoundPool", "--registrar", "127.0.0.1:3864"])
            _ = try await resolver.waitForExit()
            return resolver.lines.contains { $0.contains(identifier) }
        }
        if let capturer {
            try await Task.sleep(nanoseconds: 1_500_000_000)  // a few more Presence rounds (every 500 ms)
            capturer.signal(SIGINT)
            _ = try await capturer.waitForExit()
            let rows = try await runTool(tsharkPath, ["-r", capture, "-Y", "enrp", "-T", "fields", "-e", "enrp.message_type",
                                                      "-e", "enrp.sender_servers_id", "-e", "_ws.malformed"])
                .filter { !$0.isEmpty && !$0.hasPrefix("Running as") }
            #expect(rows.count >= 2, "Presence datagrams: \(rows)")
            #expect(rows.allSatisfy { $0.hasPrefix("1\t0x0000005") && !$0.contains("Malformed") }, "\(rows.prefix(5))")
        }
    }
}
