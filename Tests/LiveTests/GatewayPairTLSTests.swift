import Foundation
import Testing

private let tshark = "/usr/bin/tshark"

/// The encrypted gateway pair: entry ↔ exit over mutually authenticated TLS 1.3, with real
/// gateway processes, curl as the client, openssl-made certificates, `openssl s_client` as an
/// independent TLS client, and tshark showing what crosses the wire.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(4))) struct GatewayPairTLSTests {
    static var unavailableReason: String? { TestPKI.unavailableReason ?? missingTool(tshark, package: "tshark") }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func theEncryptedPairCarriesConnectionsAndRefusesEveryStranger() async throws {
        let pki = try await TestPKI()
        let origin = try await Origin.start()
        let secret = temporaryFile("secret")
        try "a shared secret of some length".write(toFile: secret, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        func tls(_ name: String, _ ca: String = "ca") -> [String] {
            ["--tls-certificate", pki.path("\(name).pem"), "--tls-key", pki.path("\(name).key"), "--tls-ca", pki.path("\(ca).pem")]
        }
        let exit = try await LiveGateway.start("exit", ["--allow", "127.0.0.1/32", "--secret-file", secret, "--peer-identity", "entry-gw"] + tls("exit-gw"))
        let plainExit = try await LiveGateway.start("exit", ["--allow", "127.0.0.1/32", "--secret-file", secret])
        let capture = temporaryFile("pair.pcapng")
        defer { try? FileManager.default.removeItem(atPath: capture) }

        let capturer = try liveProcess("tshark", ["-i", "lo", "-f", "tcp port \(exit.port) or tcp port \(plainExit.port)", "-w", capture], executable: tshark)
        try await capturer.waitForLine(containing: "Capturing on")
        try await Task.sleep(for: .milliseconds(500))   // dumpcap may still be opening the interface

        // Through the encrypted pair (the exit named by its identity) and, as the control,
        // through a plain one: the same bytes arrive both ways.
        let entry = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret, "--peer-identity", "exit-gw"] + tls("entry-gw"))
        let byAddress = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret,
                                                              "--forward", origin.authority] + tls("entry-gw"))
        let plainEntry = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(plainExit.port)", "--secret-file", secret])
        let size = 2_000_000
        let expected = try await originSHA(origin, size)
        for arguments in [["--socks5-hostname", "127.0.0.1:\(entry.port)", "http://localhost:\(origin.port)/bytes/\(size)"],
                          ["http://127.0.0.1:\(byAddress.port)/bytes/\(size)"],
                          ["--socks5-hostname", "127.0.0.1:\(plainEntry.port)", "http://localhost:\(origin.port)/bytes/\(size)"]] {
            let file = temporaryFile("pair")
            let curl = try await runCommand("/usr/bin/curl", ["-sS", "-H", "X-Marker: pairsecretpath", "-o", file] + arguments)
            #expect(curl.status == 0, "\(arguments): \(curl.output)")
            #expect(try await sha256(ofFile: file) == expected, "\(arguments)")
            try? FileManager.default.removeItem(atPath: file)
        }
        let carried = try await exit.records(atLeast: 2)
        #expect(carried.allSatisfy { $0["outcome"] as? String == "ok" }, "\(carried)")
        #expect(carried.allSatisfy { ($0["client"] as? [String: Any])?["transport"] as? String == "mptcp" })

        // Strangers: a plain entry, one whose certificate the CA signed but is not the named
        // entry, one of another CA, and an entry that expects another exit name.
        let plain = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret])
        let otherIdentity = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret] + tls("edge-1"))
        let otherCA = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret] + tls("edge-1-rogue"))
        let wrongName = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret,
                                                              "--peer-identity", "another-exit"] + tls("entry-gw"))
        for stranger in [plain, otherIdentity, otherCA, wrongName] {
            let started = Date()
            let denied = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "127.0.0.1:\(stranger.port)", "-o", "/dev/null",
                                                               "http://localhost:\(origin.port)/bytes/10"])
            #expect(denied.status != 0, "\(stranger.process.name) got through")
            #expect(Date().timeIntervalSince(started) < 5, "refused at once, not by a timeout")
        }
        _ = try await exit.process.waitForLine(containing: "entry identity edge-1 is not one of --peer-identity entry-gw", timeout: 3)
        #expect(try await wrongName.records(atLeast: 1).contains { ($0["error"] as? String ?? "").contains("TLS to the exit gateway failed") })
        #expect(try await plain.records(atLeast: 1).allSatisfy { $0["outcome"] as? String == "failed" })

        // An independent TLS client: TLS 1.3 and the exit's certificate verify against the CA.
        let client = try await runCommand("/bin/sh", ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(exit.port) -CAfile \(pki.path("ca.pem")) "
                                                          + "-cert \(pki.path("entry-gw.pem")) -key \(pki.path("entry-gw.key")) -verify_return_error -brief < /dev/null 2>&1"])
        #expect(client.output.contains { $0.contains("Protocol version: TLSv1.3") }, "\(client.output)")
        #expect(client.output.contains { $0.contains("Verification: OK") }, "\(client.output)")

        // The wire: the request's marker header crosses the plain pair readable and the encrypted one not;
        // Wireshark sees TLS application data toward the encrypted exit.
        try await Task.sleep(for: .milliseconds(300))
        capturer.signal(SIGINT)
        _ = try await capturer.waitForExit()
        func frames(_ filter: String) async throws -> Int {
            try await runTool(tshark, ["-r", capture, "-d", "tcp.port==\(exit.port),tls", "-Y", filter, "-T", "fields", "-e", "frame.number"])
                .filter { !$0.isEmpty && Int($0) != nil }.count
        }
        #expect(try await frames("tcp.port == \(plainExit.port) && frame contains \"pairsecretpath\"") >= 1, "the control shows the marker")
        #expect(try await frames("tcp.port == \(exit.port) && frame contains \"pairsecretpath\"") == 0, "the encrypted pair hides it")
        let applicationData = try await frames("tcp.port == \(exit.port) && tls.record.opaque_type == 23")
        #expect(applicationData >= 10, "TLS 1.3 application data records: \(applicationData) frames")
        #expect(try await frames("tcp.port == \(exit.port) && tls.handshake.type == 1") >= 2, "ClientHellos of the pair and of s_client")
        withExtendedLifetime([plainExit, entry, byAddress, plainEntry, plain, otherIdentity, otherCA, wrongName]) {}
    }

    /// A carried connection's sockets between the gateways close with the client, whether it
    /// closes or resets: the exit's close_notify ends the entry's TLS close at once (before
    /// TLSFullClose, both sockets stayed open until NIOSSL's 5-s shutdown timeout, and one
    /// address connecting ~1,000 times a second filled the entry's per-client cap).
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func aCarriedConnectionClosesWithItsClientNotAtTheTLSShutdownTimeout() async throws {
        let pki = try await TestPKI()
        let origin = try await Origin.start()
        func tls(_ name: String) -> [String] {
            ["--tls-certificate", pki.path("\(name).pem"), "--tls-key", pki.path("\(name).key"), "--tls-ca", pki.path("ca.pem")]
        }
        let secret = ["--secret", "a shared secret of some length"]
        let exit = try await LiveGateway.start("exit", ["--allow", "127.0.0.1/32"] + secret + tls("exit-gw"))
        let entry = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--forward", origin.authority] + secret + tls("entry-gw"))
        /// Sockets to or from the exit's port that are not closed yet (subflows included).
        func openToExit() async throws -> [String] {
            try await runTool("/usr/bin/ss", ["-tanH", "state", "established", "( sport = :\(exit.port) or dport = :\(exit.port) )"])
                .filter { !$0.isEmpty }
        }
        for ending in ["reset", "close"] {
            // Five clients fetch a few bytes and end: SO_LINGER 0 (an RST) or a plain close (FIN).
            let client = """
            import socket, struct, sys
            for _ in range(5):
                c = socket.create_connection(("127.0.0.1", \(entry.port)))
                c.sendall(b"GET /bytes/10 HTTP/1.1\\r\\nHost: origin\\r\\n\\r\\n")
                assert c.recv(4096).startswith(b"HTTP/1.")
                if sys.argv[1] == "reset": c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
            """
            let run = try await runCommand("/usr/bin/python3", ["-c", client, ending])
            #expect(run.status == 0, "\(ending): \(run.output)")
            let ended = Date()
            try await eventually(timeout: 4, "no socket between the gateways left open after the clients' \(ending)") { try await openToExit().isEmpty }
            let lingered = Date().timeIntervalSince(ended)
            #expect(lingered < 2, "sockets between the gateways outlived the clients' \(ending) by \(lingered) s")
        }
        let records = try await exit.records(atLeast: 10)
        #expect(records.allSatisfy { $0["outcome"] as? String == "ok" }, "\(records)")
        #expect(!entry.process.lines.contains { $0.contains("uncleanShutdown") }, "the entry saw no unclean TLS shutdown")
        withExtendedLifetime([origin.process]) {}
    }
}
