import Foundation
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
            let probe = """
            import socket, statistics, time
            samples = []
            for _ in range(20):
                t = time.perf_counter()
                c = socket.create_connection(("127.0.0.1", \(port)))
                c.sendall(b"GET /bytes/1 HTTP/1.1\\r\\nHost: b\\r\\nConnection: close\\r\\n\\r\\n")
                c.recv(1)
                samples.append((time.perf_counter() - t) * 1000)
                c.close(); time.sleep(0.05)
            print(statistics.median(samples))
            """
            let result = try await runEdgepool(["testbed", "exec", name, "a", "--", "/usr/bin/python3", "-c", probe])
            return try #require(Double(result.output.last ?? ""), "\(result.output)")
        }
        let cold = try await firstByte(preconnect: 0)
        let held = try await firstByte(preconnect: 2)
        print(String(format: "backend 20 ms away (emulated): first byte through the gateway %.1f ms without, %.1f ms with --preconnect 2", cold, held))
        // Without: the gateway's connect (one round trip) + the request (another). With: the request only.
        #expect(cold > 35 && held < 30, "cold \(cold) ms, held \(held) ms")
        #expect(cold - held > 14, "saved \(cold - held) ms of a 20 ms round trip")
    }
}
