import Foundation
import ProcessSupport
import Testing

/// `edgepool gateway reverse --preconnect`: connections held open to the backends ahead of
/// the clients — what a server says first still reaches the client, and a backend one
/// emulated round trip away answers a client one round trip sooner.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct GatewayPreconnectTests {
    @Test func heldConnectionsCarryAServerFirstGreetingAndAreUsed() async throws {
        // A backend that greets on accept, then echoes.
        let backend = try liveProcess("greeter", ["-c", """
        import socket, threading
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)
        print("greeter listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
        accepted = 0
        def serve(c):
            c.sendall(b"HELLO\\n")
            while True:
                d = c.recv(65536)
                if not d: break
                c.sendall(d)
            c.close()
        while True:
            c, _ = s.accept(); accepted += 1
            print("accepted", accepted, flush=True)
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """], executable: "/usr/bin/python3")
        let line = try await backend.waitForLine(containing: "greeter listening on")
        let backendPort = try #require(line.split(separator: ":").last.flatMap { Int($0) })
        let statusPort = try freePort()
        let gateway = try await LiveGateway.start("reverse", ["--backend", "127.0.0.1:\(backendPort)", "--preconnect", "2", "--threads", "1",
                                                             "--status", "127.0.0.1:\(statusPort)"])
        // The backend sees the held connections before any client comes.
        _ = try await backend.waitForLine(containing: "accepted 2")
        try await Task.sleep(for: .milliseconds(300))
        for round in 0..<3 {
            let result = try await runCommand("/usr/bin/python3", ["-c", """
            import socket
            c = socket.create_connection(("127.0.0.1", \(gateway.port))); c.settimeout(3)
            data = b""
            while not data.endswith(b"\\n"): data += c.recv(100)
            c.sendall(b"ping \(round)\\n")
            echo = b""
            while not echo.endswith(b"\\n"): echo += c.recv(100)
            print(data.decode().strip(), echo.decode().strip())
            """])
            #expect(result.output.last == "HELLO ping \(round)", "\(result.output)")
        }
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_preconnected_total") && $0.contains("outcome=\"used\"") && $0.hasSuffix(" 3") },
                "\(metrics.filter { $0.contains("preconnect") })")
        let records = try await gateway.records(atLeast: 3)
        #expect(records.allSatisfy { $0["outcome"] as? String == "ok" && ($0["upstream"] as? [String: Any])?["bytesIn"] as? Int == 13 })

        let badPool = try await runEdgepool(["gateway", "reverse", "--pool", "WebPool", "--preconnect", "2"])
        #expect(badPool.status != 0 && badPool.output.contains { $0.contains("--preconnect needs --backend") })
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func aDistantBackendAnswersOneRoundTripSooner() async throws {
        let name = try await LinkEmulatorTests.up("p\(getpid() % 100_000)", "delay=10ms")
        defer { TestbedLiveTests.forceDown(name) }
        let origin = try liveProcess("origin", ["testbed", "exec", name, "b", "--", "/usr/bin/python3", Origin.script, "0.0.0.0", "8000"])
        try await origin.waitForLine(containing: "origin listening on")
        // Connect through a reverse gateway on host a, send a request, read the first byte of
        // the answer: median of 20, in milliseconds.
        func firstByte(preconnect: Int) async throws -> Double {
            let port = 7100 + preconnect
            let gateway = try liveProcess("gateway", ["testbed", "exec", name, "a", "--", edgepoolBinary, "gateway", "reverse",
                                                      "--listen", "127.0.0.1:\(port)", "--backend", "10.96.0.2:8000", "--threads", "1",
                                                      "--preconnect", "\(preconnect)", "--telemetry-interval", "0"])
            defer { gateway.signal(SIGTERM) }
            _ = try await gateway.waitForReady()
            try await Task.sleep(for: .milliseconds(300))   // the held connections' handshakes
            return try await Self.firstByte(in: name, host: "127.0.0.1", port: port)
        }
        let cold = try await firstByte(preconnect: 0)
        let held = try await firstByte(preconnect: 2)
        print(String(format: "backend 20 ms away (emulated): first byte through the gateway %.1f ms without, %.1f ms with --preconnect 2", cold, held))
        // Without: the gateway's connect (one round trip) + the request (another). With: the request only.
        #expect(cold > 35 && held < 30, "cold \(cold) ms, held \(held) ms")
        #expect(cold - held > 14, "saved \(cold - held) ms of a 20 ms round trip")
    }

    /// The gateway pair across an emulated 20 ms round trip (entry on host a, exit and an
    /// origin on host b): a client's first byte of the answer, median of 20, set beside a
    /// direct TCP connection over the same path. Held connections to the exit
    /// (`entry --preconnect 2`) take the MPTCP handshake (and with TLS the TLS handshake) out
    /// of every client connection.
    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func heldPairConnectionsTakeTheWANHandshakesOutOfEveryClientConnection() async throws {
        let name = try await LinkEmulatorTests.up("q\(getpid() % 100_000)", "delay=10ms")
        defer { TestbedLiveTests.forceDown(name) }
        let pki = try await TestPKI()
        let secret = temporaryFile("secret")
        try "a shared secret of some length".write(toFile: secret, atomically: true, encoding: .utf8)
        let origin = try liveProcess("origin", ["testbed", "exec", name, "b", "--", "/usr/bin/python3", Origin.script, "0.0.0.0", "8000"])
        try await origin.waitForLine(containing: "origin listening on")
        func exit(port: Int, tls: Bool) async throws -> ChildProcess {
            let tlsFlags = tls ? ["--tls-certificate", pki.path("exit-gw.pem"), "--tls-key", pki.path("exit-gw.key"), "--tls-ca", pki.path("ca.pem")] : []
            let process = try liveProcess("exit", ["testbed", "exec", name, "b", "--", edgepoolBinary, "gateway", "exit", "--listen", "10.96.0.2:\(port)",
                                                   "--secret-file", secret, "--allow", "127.0.0.1/32", "--threads", "1", "--telemetry-interval", "0"] + tlsFlags)
            _ = try await process.waitForReady()
            return process
        }
        let plainExit = try await exit(port: 7000, tls: false)
        let tlsExit = try await exit(port: 7001, tls: true)

        func throughEntry(socks: Bool, tls: Bool, preconnect: Int) async throws -> Double {
            let port = 7200 + (socks ? 10 : 0) + (tls ? 20 : 0) + preconnect
            let tlsFlags = tls ? ["--tls-certificate", pki.path("entry-gw.pem"), "--tls-key", pki.path("entry-gw.key"), "--tls-ca", pki.path("ca.pem"),
                                  "--peer-identity", "exit-gw"] : []
            let entry = try liveProcess("entry", ["testbed", "exec", name, "a", "--", edgepoolBinary, "gateway", "entry", "--listen", "127.0.0.1:\(port)",
                                                  "--exit", "10.96.0.2:\(tls ? 7001 : 7000)", "--secret-file", secret, "--threads", "1",
                                                  "--preconnect", "\(preconnect)", "--telemetry-interval", "0"]
                                  + (socks ? [] : ["--forward", "127.0.0.1:8000"]) + tlsFlags)
            defer { entry.signal(SIGTERM) }
            _ = try await entry.waitForReady()
            try await Task.sleep(for: .milliseconds(400))   // the held connections' handshakes
            return try await Self.firstByte(in: name, host: "127.0.0.1", port: port, socks: socks)
        }
        let direct = try await Self.firstByte(in: name, host: "10.96.0.2", port: 8000)
        var rows: [(String, Double, Double)] = []
        for (socks, tls) in [(false, false), (true, false), (false, true)] {
            rows.append(("\(socks ? "socks5" : "forward")\(tls ? "+tls" : "")",
                         try await throughEntry(socks: socks, tls: tls, preconnect: 0), try await throughEntry(socks: socks, tls: tls, preconnect: 2)))
        }
        print(String(format: "pair across 20 ms (emulated): first byte direct %.1f ms", direct))
        for (mode, cold, held) in rows {
            print(String(format: "  %@: %.1f ms without, %.1f ms with --preconnect 2 (%+.1f ms against direct)", mode, cold, held, held - direct))
        }
        let (forward, socks, tls) = (rows[0], rows[1], rows[2])
        // Held: forward mode sends the header and the request at once (one round trip, less than
        // direct's two); SOCKS5 waits for the exit's status (two, like direct, plus the two
        // gateways' processing); TLS is done ahead.
        #expect(forward.2 < direct - 10, "forward, held: \(forward.2) ms against direct \(direct) ms")
        #expect(socks.2 < direct + 10, "SOCKS5, held: \(socks.2) ms against direct \(direct) ms")
        #expect(socks.1 - socks.2 > 14, "SOCKS5: one round trip saved (\(socks.1) → \(socks.2) ms)")
        #expect(tls.1 - tls.2 > 30, "TLS: two round trips saved (\(tls.1) → \(tls.2) ms)")
        #expect(tls.2 < direct - 10, "TLS forward, held: \(tls.2) ms")
        withExtendedLifetime([origin, plainExit, tlsExit]) {}
    }

    /// From host a of testbed `name`: connect to HOST:PORT (with `socks`, a SOCKS5 CONNECT to
    /// 127.0.0.1:8000 first), send a request, read the first byte of the answer — the median
    /// of 20, in milliseconds.
    static func firstByte(in name: String, host: String, port: Int, socks: Bool = false) async throws -> Double {
        let probe = """
        import socket, statistics, time
        samples = []
        for _ in range(20):
            t = time.perf_counter()
            c = socket.create_connection(("\(host)", \(port)))
            if \(socks ? "True" : "False"):
                c.sendall(b"\\x05\\x01\\x00"); c.recv(2)
                c.sendall(b"\\x05\\x01\\x00\\x01\\x7f\\x00\\x00\\x01\\x1f\\x40"); r = b""
                while len(r) < 10: r += c.recv(10 - len(r))
            c.sendall(b"GET /bytes/1 HTTP/1.1\\r\\nHost: b\\r\\nConnection: close\\r\\n\\r\\n")
            c.recv(1)
            samples.append((time.perf_counter() - t) * 1000)
            c.close(); time.sleep(0.05)
        print(statistics.median(samples))
        """
        let result = try await runEdgepool(["testbed", "exec", name, "a", "--", "/usr/bin/python3", "-c", probe])
        return try #require(Double(result.output.last ?? ""), "\(result.output)")
    }
}
