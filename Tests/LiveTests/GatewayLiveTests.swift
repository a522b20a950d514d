import Foundation
import ProcessSupport
import Testing

/// The gateway as a real process with real clients: curl (SOCKS5, HTTP proxy, CONNECT),
/// PySocks, the entry/exit pair, the reverse proxy over an RSerPool pool, bad input, drain.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct GatewayLiveTests {
    @Test func socks5WithCurlByNameAndAddressWithAndWithoutAuthentication() async throws {
        let origin = try await Origin.start()
        let size = 3_000_000
        let expected = try await originSHA(origin, size)
        let open = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32"])
        for flag in ["--socks5-hostname", "--socks5"] {
            let file = temporaryFile("socks")
            let curl = try await runCommand("/usr/bin/curl", ["-sS", flag, "127.0.0.1:\(open.port)", "-o", file, "http://localhost:\(origin.port)/bytes/\(size)"])
            #expect(curl.status == 0, "\(curl.output)")
            #expect(try await sha256(ofFile: file) == expected)
            try? FileManager.default.removeItem(atPath: file)
        }
        let records = try await open.records(atLeast: 2)
        #expect(records.allSatisfy { $0["outcome"] as? String == "ok" })
        #expect(records.compactMap { ($0["upstream"] as? [String: Any])?["bytesIn"] as? Int }.allSatisfy { $0 > size })

        let guarded = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "alice:s3cret"])
        let good = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "alice:s3cret@127.0.0.1:\(guarded.port)", "-o", "/dev/null",
                                                         "-w", "%{http_code}", "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(good.status == 0 && good.output.last == "200")
        let bad = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "alice:wrong@127.0.0.1:\(guarded.port)", "-o", "/dev/null",
                                                        "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(bad.status != 0)
        let none = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "127.0.0.1:\(guarded.port)", "-o", "/dev/null",
                                                         "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(none.status != 0)
        let refused = try await guarded.records(atLeast: 3).filter { $0["outcome"] as? String == "refused" }
        #expect(refused.count == 2)
        #expect(refused.contains { ($0["error"] as? String)?.contains("authentication failed for user 'alice'") == true })
    }

    @Test func socks5RefusesProtectedDestinationsAndReportsConnectFailures() async throws {
        let origin = try await Origin.start()
        let statusPort = try freePort()
        let gateway = try await LiveGateway.start("socks", ["--status", "127.0.0.1:\(statusPort)"])
        // Loopback is the gateway's own: refused by default (reply 2, "not allowed by ruleset").
        let protected = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(gateway.port)", "-o", "/dev/null",
                                                              "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(protected.status == 97)
        #expect(protected.output.joined().contains("(2)"), "reply 2: not allowed by ruleset")
        let byName = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "127.0.0.1:\(gateway.port)", "-o", "/dev/null",
                                                           "http://localhost:\(origin.port)/bytes/10"])
        #expect(byName.status == 97)
        let records = try await gateway.records(atLeast: 2)
        #expect(records.allSatisfy { $0["outcome"] as? String == "refused" && ($0["error"] as? String)?.contains("loopback range 127.0.0.0/8") == true })
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_connections_total") && $0.contains("outcome=\"refused\"") && $0.hasSuffix(" 2") },
                "\(metrics.filter { $0.contains("edgepool_gateway") })")

        let allowed = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32"])
        let closedPort = try freePort()
        let refused = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(allowed.port)", "-o", "/dev/null", "http://127.0.0.1:\(closedPort)/"])
        #expect(refused.status == 97)
        #expect(refused.output.joined().contains("(5)"), "reply 5: connection refused")
    }

    @Test func httpProxyForwardsTunnelsKeepsAliveAndExplainsFailures() async throws {
        let origin = try await Origin.start()
        let size = 2_000_000
        let expected = try await originSHA(origin, size)
        let gateway = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32", "--connect-port", "\(origin.port)"])
        let proxy = "http://127.0.0.1:\(gateway.port)"
        for tunnel in [false, true] {
            let file = temporaryFile("http")
            let curl = try await runCommand("/usr/bin/curl", ["-sS", "-x", proxy] + (tunnel ? ["-p"] : []) + ["-o", file, "http://127.0.0.1:\(origin.port)/bytes/\(size)"])
            #expect(curl.status == 0, "\(curl.output)")
            #expect(try await sha256(ofFile: file) == expected, "tunnel: \(tunnel)")
            try? FileManager.default.removeItem(atPath: file)
        }
        // Keep-alive: two requests, one connection to the proxy (num_connects 0 the second time).
        let twice = try await runCommand("/usr/bin/curl", ["-sS", "-x", proxy, "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                                                          "http://127.0.0.1:\(origin.port)/bytes/1000", "http://127.0.0.1:\(origin.port)/bytes/2000"])
        #expect(twice.output.suffix(2) == ["200 1", "200 0"])
        // A chunked upload passes through intact.
        let upload = temporaryFile("upload")
        _ = FileManager.default.createFile(atPath: upload, contents: Data((0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        let posted = try await runCommand("/usr/bin/curl", ["-sS", "-x", proxy, "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(upload)",
                                                           "http://127.0.0.1:\(origin.port)/sha"])
        #expect(posted.output.last == (try await sha256(ofFile: upload)))
        try? FileManager.default.removeItem(atPath: upload)

        func status(_ arguments: [String]) async throws -> String {
            try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy] + arguments).output.last ?? ""
        }
        #expect(try await status(["http://127.0.0.1:\(try freePort())/"]) == "502")
        #expect(try await status(["http://no-such-host.invalid/"]) == "502")
        #expect(try await status(["http://169.254.169.254/latest/meta-data/"]) == "403")
        #expect(try await status(["https://127.0.0.1:\(origin.port)/", "--proxytunnel", "--max-time", "5"]) != "200")

        let authenticated = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32", "--user", "bob:pw"])
        let authProxy = "http://127.0.0.1:\(authenticated.port)"
        let noCredentials = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", authProxy, "http://127.0.0.1:\(origin.port)/bytes/1"])
        #expect(noCredentials.output.last == "407")
        let withCredentials = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", authProxy, "-U", "bob:pw",
                                                                    "http://127.0.0.1:\(origin.port)/bytes/1"])
        #expect(withCredentials.output.last == "200")
    }

    @Test func configurationFileWorksAndATypoIsNamed() async throws {
        let origin = try await Origin.start()
        let good = temporaryFile("config")
        try #"{"listen": ["127.0.0.1:0"], "allow": ["127.0.0.1/32"], "users": {"carol": "pw"}, "idleTimeout": "30s"}"#
            .write(toFile: good, atomically: true, encoding: .utf8)
        let gateway = try liveProcess("gateway", ["gateway", "socks", "--config", good])
        let port = try #require(try await gateway.waitForReady().port("listen"))
        let curl = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "carol:pw@127.0.0.1:\(port)", "-o", "/dev/null", "-w", "%{http_code}",
                                                         "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(curl.output.last == "200")
        let typo = temporaryFile("typo")
        try #"{"lisen": ["127.0.0.1:0"]}"#.write(toFile: typo, atomically: true, encoding: .utf8)
        let refused = try await runEdgepool(["gateway", "socks", "--config", typo])
        #expect(refused.status != 0)
        #expect(refused.output.contains { $0.contains("unknown key(s) lisen") })
        let badRule = try await runEdgepool(["gateway", "socks", "--allow", "10.0.0.0/33"])
        #expect(badRule.status != 0)
        #expect(badRule.output.contains { $0.contains("destination rule '10.0.0.0/33'") })
        let badReads = try await runEdgepool(["gateway", "socks", "--reads-per-event", "0"])
        #expect(badReads.status != 0 && badReads.output.contains { $0.contains("--reads-per-event (readsPerEvent) must be 1…16") }, "\(badReads.output)")
    }

    @Test(.enabled(if: pySocksUnavailable == nil, "\(pySocksUnavailable ?? "")"))
    func pySocksFetchesThroughTheGateway() async throws {
        let origin = try await Origin.start()
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "py:thon"])
        let script = """
        import hashlib, socks, sys
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", \(gateway.port), rdns=True, username="py", password="thon")
        s.connect(("localhost", \(origin.port)))
        s.sendall(b"GET /bytes/500000 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        body = data.split(b"\\r\\n\\r\\n", 1)[1]
        print(len(body), hashlib.sha256(body).hexdigest())
        """
        let result = try await runCommand("/usr/bin/python3", ["-c", script])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.last == "500000 \(try await originSHA(origin, 500_000))")
    }

    @Test(.enabled(if: pySocksUnavailable == nil, "\(pySocksUnavailable ?? "")"))
    func socks5UDPAssociateRelaysForPySocksAndDropsWhatItMustNot() async throws {
        let script = packageRoot.appendingPathComponent("Tests/LiveTests/Support/socks5_udp_client.py").path
        let statusPort = try freePort()
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "udp:pass", "--status", "127.0.0.1:\(statusPort)"])
        let result = try await runCommand("/usr/bin/python3", [script, "\(gateway.port)", "udp", "pass"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.filter { $0.hasPrefix("ok ") }.count == 12, "\(result.output)")

        // The gateway's own account: three associations, the dropped datagrams counted and named.
        let records = try await gateway.records(atLeast: 3).filter { $0["udp"] != nil }
        #expect(records.count == 3)
        let udp = records.compactMap { $0["udp"] as? [String: Any] }
        #expect(udp.compactMap { $0["datagramsFromClient"] as? Int }.sorted() == [2, 10, 51])
        #expect(udp.compactMap { $0["datagramsToClient"] as? Int }.sorted() == [2, 10, 51])
        #expect(udp.compactMap { $0["datagramsDropped"] as? Int }.reduce(0, +) >= 4)
        #expect(udp.contains { ($0["bytesFromClient"] as? Int ?? 0) > 60_000 })
        let log = gateway.process.lines.joined(separator: "\n")
        for reason in ["fragmented", "refused", "not_from_client", "unknown_peer"] {
            #expect(log.contains("reason=\(reason)") || log.contains("\"reason\": \"\(reason)\"") || log.contains("reason: \(reason)"),
                    "no log line for a \(reason) drop")
        }
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_udp_datagrams_total") && $0.contains("outcome=\"fragmented\"") && $0.hasSuffix(" 1") },
                "\(metrics.filter { $0.contains("udp") })")

        let off = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "udp:pass", "--no-udp"])
        let refused = try await runCommand("/usr/bin/python3", [script, "\(off.port)", "udp", "pass", "--refused"])
        #expect(refused.status == 0, "\(refused.output)")

        let one = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--user", "udp:pass", "--max-udp-associations", "1"])
        let limited = try await runCommand("/usr/bin/python3", [script, "\(one.port)", "udp", "pass", "--limit-one"])
        #expect(limited.status == 0 && limited.output.filter { $0.hasPrefix("ok ") }.count == 3, "\(limited.output)")
        #expect(one.process.lines.contains { $0.contains("UDP associations are open already") })
    }

    @Test func entryAndExitCarryConnectionsOverMPTCPAndRefuseAWrongSecret() async throws {
        let origin = try await Origin.start()
        let secret = temporaryFile("secret")
        try "a shared secret of some length".write(toFile: secret, atomically: true, encoding: .utf8)
        let exit = try await LiveGateway.start("exit", ["--allow", "127.0.0.1/32", "--secret-file", secret, "--telemetry-interval", "100ms"])
        let entry = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret])
        let forward = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", secret, "--forward", origin.authority])
        let size = 4_000_000
        let expected = try await originSHA(origin, size)
        for arguments in [["--socks5-hostname", "127.0.0.1:\(entry.port)", "http://localhost:\(origin.port)/bytes/\(size)"],
                          ["http://127.0.0.1:\(forward.port)/bytes/\(size)"]] {
            let file = temporaryFile("pair")
            let curl = try await runCommand("/usr/bin/curl", ["-sS", "-o", file] + arguments)
            #expect(curl.status == 0, "\(curl.output)")
            #expect(try await sha256(ofFile: file) == expected)
            try? FileManager.default.removeItem(atPath: file)
        }
        let carried = try await exit.records(atLeast: 2)
        #expect(carried.allSatisfy { ($0["client"] as? [String: Any])?["transport"] as? String == "mptcp" })
        #expect(carried.allSatisfy { $0["outcome"] as? String == "ok" })
        // The exit's refusal travels back as the SOCKS reply.
        let closed = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(entry.port)", "-o", "/dev/null", "http://127.0.0.1:\(try freePort())/"])
        #expect(closed.status == 97)
        #expect(closed.output.joined().contains("(5)"), "the exit's 'connection refused' reaches the client: \(closed.output)")

        let wrongSecret = temporaryFile("wrong")
        try "not the shared secret at all".write(toFile: wrongSecret, atomically: true, encoding: .utf8)
        let impostor = try await LiveGateway.start("entry", ["--exit", "127.0.0.1:\(exit.port)", "--secret-file", wrongSecret])
        let started = Date()
        let denied = try await runCommand("/usr/bin/curl", ["-sS", "--socks5-hostname", "127.0.0.1:\(impostor.port)", "-o", "/dev/null",
                                                           "http://localhost:\(origin.port)/bytes/10"])
        #expect(denied.status != 0)
        #expect(Date().timeIntervalSince(started) < 5, "refused at once, not by the handshake timeout")
        try await exit.process.waitForLine(containing: "authentication tag does not verify")
    }

    @Test func reverseProxyTakesBackendsFromAPoolAndFailsOver() async throws {
        let registrar = try await LiveRegistrar.start()
        let first = try await startPoolElement(registrar: registrar.endpoint, pool: "GatewayPool", extra: ["--service", "echo", "--policy", "rr"])
        let second = try await startPoolElement(registrar: registrar.endpoint, pool: "GatewayPool", extra: ["--service", "echo", "--policy", "rr"])
        // The PEs are on loopback: a destination rule must open it (a registration cannot send
        // the gateway into the operator's networks on its own).
        let closed = try await LiveGateway.start("reverse", ["--pool", "GatewayPool", "--registrar", registrar.endpoint])
        #expect(try await rawExchange(port: closed.port, bytes: Array("hello\n".utf8), wait: 1).received.isEmpty)
        let refused = try await closed.records()
        #expect(refused.first?["outcome"] as? String != "ok" && (refused.first?["error"] as? String)?.contains("loopback range") == true, "\(refused)")
        let gateway = try await LiveGateway.start("reverse", ["--pool", "GatewayPool", "--registrar", registrar.endpoint, "--allow", "127.0.0.1/32"])
        for index in 0..<4 {
            let message = Array("hello \(index)\n".utf8)
            let reply = try await rawExchange(port: gateway.port, bytes: message, wait: 0.5)
            #expect(reply.received == message)
        }
        let destinations = Set(try await gateway.records(atLeast: 4).compactMap { $0["destination"] as? String })
        #expect(destinations.contains { $0.contains(first.identifier) } && destinations.contains { $0.contains(second.identifier) },
                "round robin over both PEs: \(destinations)")
        // One PE dies; every new connection still reaches the other.
        first.process.signal(SIGKILL)
        _ = try await first.process.waitForExit()
        for index in 0..<4 {
            let message = Array("after \(index)\n".utf8)
            #expect(try await rawExchange(port: gateway.port, bytes: message, wait: 0.5).received == message)
        }
    }

    @Test func badInputGetsAnAnswerOrATimeoutAndOthersAreUntouched() async throws {
        let origin = try await Origin.start()
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--handshake-timeout", "1s"])
        // Not SOCKS at all: closed without a reply.
        #expect(try await rawExchange(port: gateway.port, bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8)).received == [])
        // Unknown address type: reply 8.
        let unknownType = try await rawExchange(port: gateway.port, bytes: [5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80])
        #expect(unknownType.received.prefix(4) == [5, 0, 5, 8])
        // BIND: reply 7 (command not supported).
        let bind = try await rawExchange(port: gateway.port, bytes: [5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
        #expect(bind.received.prefix(4) == [5, 0, 5, 7])
        // A 255-byte domain of characters no host name has: general failure.
        let oversize = try await rawExchange(port: gateway.port, bytes: [5, 1, 0, 5, 1, 0, 3, 255] + [UInt8](repeating: 0x20, count: 255) + [0, 80])
        #expect(oversize.received.prefix(4) == [5, 0, 5, 1])
        // Truncated greeting, then silence (slow loris): closed by the handshake timeout.
        let start = Date()
        let slow = try await rawExchange(port: gateway.port, bytes: [5, 2, 0], wait: 4)
        #expect(slow.received == [])
        #expect(Date().timeIntervalSince(start) < 3.5, "closed by the 1 s handshake timeout, not by the test's wait")
        // Meanwhile a real client works.
        let curl = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(gateway.port)", "-o", "/dev/null", "-w", "%{http_code}",
                                                         "http://127.0.0.1:\(origin.port)/bytes/1000"])
        #expect(curl.output.last == "200")
        try await gateway.process.waitForLine(containing: "handshake not finished within")

        // HTTP: request smuggling shapes and garbage get 400.
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32"])
        let smuggle = "POST http://127.0.0.1:\(origin.port)/sha HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        let answer = String(decoding: try await rawExchange(port: http.port, bytes: Array(smuggle.utf8)).received, as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        let garbage = String(decoding: try await rawExchange(port: http.port, bytes: Array("\u{1}\u{2}garbage\r\n\r\n".utf8)).received, as: UTF8.self)
        #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
    }

    /// The idle timeout closes a relay neither side has read on (and no other), and thousands of
    /// closed connections leave nothing behind. (Before IdleSweep, every relayed connection left
    /// an idle timer holding its upstream channel for the whole idle timeout: ~600 bytes each.)
    @Test func idleRelaysCloseAtTheIdleTimeoutAndChurnLeavesNothingBehind() async throws {
        // An echo backend: the relay is in place as soon as the backend accepts.
        let echo = try liveProcess("echo-backend", ["-c", """
            import asyncio
            async def echo(r, w):
                while data := await r.read(65536): w.write(data)
                w.close()
            async def main():
                server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=1024)
                print("echo listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
                await server.serve_forever()
            asyncio.run(main())
            """], executable: "/usr/bin/python3")
        let line = try await echo.waitForLine(containing: "echo listening on")
        let backend = String(line.split(separator: " ").last ?? "")
        let gateway = try await LiveGateway.start("reverse", ["--backend", backend, "--upstream-transport", "tcp", "--idle-timeout", "1s"])

        let (idleLifetime, busyOpen) = try await offCooperativePool { () -> (Double, Bool) in
            let idle = try RawConnection(port: gateway.port)
            let busy = try RawConnection(port: gateway.port)
            let start = Date()
            var busyOpen = true
            var idleLifetime = -1.0
            while Date().timeIntervalSince(start) < 3 {
                try busy.sendAll([0x2A])
                busyOpen = busyOpen && !busy.receive(for: 0.3, until: { $0.count >= 1 }).closed
                if idleLifetime < 0, idle.receive(for: 0.01).closed { idleLifetime = Date().timeIntervalSince(start) }
            }
            return (idleLifetime, busyOpen)
        }
        #expect(idleLifetime >= 1 && idleLifetime < 2, "the idle relay closed after \(idleLifetime) s (timeout 1 s, sweep every 100 ms)")
        #expect(busyOpen, "a relay that reads every 300 ms stays open")
        #expect(try await gateway.records(atLeast: 1).contains { $0["outcome"] as? String == "timeout" })

        // Churn: connect, echo a byte, reset — 3,000 to warm up, then 6,000 more.
        let churn = """
            import socket, struct, sys
            for _ in range(int(sys.argv[1])):
                c = socket.create_connection(("127.0.0.1", \(gateway.port)))
                c.sendall(b"x"); assert c.recv(1) == b"x"
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
            """
        #expect(try await runCommand("/usr/bin/python3", ["-c", churn, "3000"]).status == 0)
        try await Task.sleep(for: .milliseconds(300))
        let warm = try residentKiB(of: gateway.process.pid)
        #expect(try await runCommand("/usr/bin/python3", ["-c", churn, "6000"]).status == 0)
        try await Task.sleep(for: .milliseconds(300))
        let grown = try residentKiB(of: gateway.process.pid) - warm
        #expect(grown < 1_500, "6,000 closed connections grew the gateway by \(grown) KiB")
        withExtendedLifetime(echo) {}
    }

    @Test func aClientThatNeverReadsHoldsBoundedMemoryAndSIGTERMDrains() async throws {
        let origin = try await Origin.start()
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--drain-timeout", "20s"])
        let before = try residentKiB(of: gateway.process.pid)
        // Ten clients ask for 50 MB each and never read.
        let request = Array("GET /bytes/50000000 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        var stuck = try await offCooperativePool { () -> [RawConnection] in
            try (0..<10).map { _ in try openSOCKSStream(port: gateway.port, target: 0x7F00_0001, targetPort: UInt16(origin.port), then: request) }
        }
        try await Task.sleep(for: .seconds(3))
        let growth = try residentKiB(of: gateway.process.pid) - before
        print("gateway RSS grew \(growth) KiB with 10 stalled 50 MB downloads (limit per connection: 64 KiB queued + one read)")
        #expect(growth < 16 * 1024, "RSS grew \(growth) KiB for 10 stalled 50 MB downloads")

        // A slow download is in flight when SIGTERM comes: it completes, then the gateway exits 0.
        let file = temporaryFile("drain")
        let curl = try liveProcess("curl", ["-sS", "--socks5", "127.0.0.1:\(gateway.port)", "-o", file, "http://127.0.0.1:\(origin.port)/slow/200000"],
                                   executable: "/usr/bin/curl")
        try await Task.sleep(for: .milliseconds(500))
        stuck.removeAll()   // closed with unread data: the kernel resets them
        gateway.process.signal(SIGTERM)
        #expect(try await curl.waitForExit() == 0)
        #expect(try await gateway.process.waitForExit() == 0)
        #expect(try await sha256(ofFile: file) == (try await originSHA(origin, 200_000)))
        try await gateway.process.waitForLine(containing: "draining")
    }
}

/// Opens a SOCKS5 CONNECT (no auth) to an IPv4 target, sends `then`, and returns the
/// connection without reading anything more (a client that never reads: 4 KiB receive buffer).
func openSOCKSStream(port: Int, target: UInt32, targetPort: UInt16, then payload: [UInt8]) throws -> RawConnection {
    let connection = try RawConnection(port: port, receiveBuffer: 4096)
    try connection.sendAll([5, 1, 0, 5, 1, 0, 1] + withUnsafeBytes(of: target.bigEndian, Array.init) + withUnsafeBytes(of: targetPort.bigEndian, Array.init))
    let reply = connection.receive(for: 5) { $0.count >= 12 }.bytes
    guard reply.count >= 12 else { throw LiveTestError("no SOCKS reply") }
    guard reply[3] == 0 else { throw LiveTestError("SOCKS refused: \(reply)") }
    try connection.sendAll(payload)
    return connection
}

/// Why PySocks cannot be used by /usr/bin/python3 (nil: it can).
let pySocksUnavailable: String? = {
    if let reason = missingTool("/usr/bin/python3", package: "python3") { return reason }
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    probe.arguments = ["-c", "import socks"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return "cannot run /usr/bin/python3" }
    probe.waitUntilExit()
    return probe.terminationStatus == 0 ? nil : "PySocks is not importable by /usr/bin/python3 (Debian package python3-socks; scripts/test installs it as root)"
}()
