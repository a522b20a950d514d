import Foundation
import ProcessSupport
import Testing

/// The gateway against clients that break the rules on purpose: request smuggling, framing
/// errors, oversized heads, one client taking every slot, flags a mode would ignore.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct GatewayAbuseTests {
    struct RecordingOrigin {
        let process: ChildProcess
        let port: Int
        let log: String

        static func start() async throws -> RecordingOrigin {
            let log = temporaryFile("origin-log")
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let script = packageRoot.appendingPathComponent("Tests/LiveTests/Support/recording_origin.py").path
            let process = try liveProcess("recording-origin", [script, log], executable: "/usr/bin/python3")
            let line = try await process.waitForLine(containing: "listening on")
            guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else { throw LiveTestError("no port in \(line)") }
            return RecordingOrigin(process: process, port: port, log: log)
        }

        /// The request lines that reached the origin.
        var requestLines: [String] {
            let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: log))) ?? Data(), as: UTF8.self)
            return text.components(separatedBy: "\r\n").filter { $0.range(of: #"^[A-Z]+ \S+ HTTP/1\.[01]$"#, options: .regularExpression) != nil }
        }
    }

    func exchange(_ port: Int, _ text: String, wait: Double = 1.5) async throws -> String {
        String(decoding: try await rawExchange(port: port, bytes: Array(text.utf8), wait: wait).received, as: UTF8.self)
    }

    @Test func smugglingShapesNeverReachTheOriginAsASecondRequest() async throws {
        let origin = try await RecordingOrigin.start()
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32"])
        let target = "http://127.0.0.1:\(origin.port)/"
        let inner = "GET /smuggled HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        let chunk = String(inner.utf8.count, radix: 16)
        let shapes: [(String, String)] = [
            ("HTTP/1.0 with Transfer-Encoding (the measured defect)",
             "POST \(target) HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(chunk)\r\n\(inner)\r\n0\r\n\r\n"),
            ("Content-Length and Transfer-Encoding",
             "POST \(target) HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(inner)"),
            ("a listed coding", "POST \(target) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n\(inner)"),
            ("an underscore field", "POST \(target) HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n\r\n\(inner)"),
            ("duplicate chunked", "POST \(target) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(inner)"),
            ("differing lengths", "POST \(target) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 45\r\n\r\n\(inner)"),
        ]
        for (name, request) in shapes {
            let answer = try await exchange(http.port, request)
            #expect(answer.hasPrefix("HTTP/1.1 400") || answer.hasPrefix("HTTP/1.1 501"), "\(name): \(answer.prefix(80))")
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "\(name): one answer only: \(answer)")
        }
        // A legitimate chunked upload still goes through, re-framed, as one request.
        let good = try await exchange(http.port, "POST \(target) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        #expect(good.hasPrefix("HTTP/1.1 200"), "\(good)")
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(origin.requestLines == ["POST / HTTP/1.1"], "only the legitimate request reached the origin: \(origin.requestLines)")
        #expect(!origin.requestLines.contains { $0.contains("smuggled") })
        try await eventually(timeout: 5, "refusals logged") { http.process.lines.contains { $0.contains("possible request smuggling") } }
    }

    @Test func aFramingErrorGetsOneAnswerAndTheUpstreamIsClosed() async throws {
        let origin = try await RecordingOrigin.start()
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32"])
        for size in ["ffffffffffffffffff", "10000000000000000", "xyz", "-1"] {
            let started = Date()
            let answer = try await exchange(http.port, "POST http://127.0.0.1:\(origin.port)/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nabc\r\n", wait: 3)
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(size): \(answer.prefix(60))")
            #expect(!answer.contains("200 OK"), "\(size): the origin's answer must not follow ours: \(answer)")
            #expect(Date().timeIntervalSince(started) < 2.5, "\(size): closed after the 400, not held")
        }
        // A chunk longer than declared.
        let longer = try await exchange(http.port, "POST http://127.0.0.1:\(origin.port)/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n", wait: 3)
        #expect(longer.hasPrefix("HTTP/1.1 400") && !longer.contains("200 OK"), "\(longer)")
        // Garbage with Connection: close is closed at once.
        let started = Date()
        _ = try await exchange(http.port, "\u{1}\u{2} nonsense\r\nConnection: close\r\n\r\n", wait: 5)
        #expect(Date().timeIntervalSince(started) < 2, "a 400 is followed by the close")
    }

    @Test func oversizedHeadsAnswer431() async throws {
        let origin = try await RecordingOrigin.start()
        let http = try await LiveGateway.start("http", ["--allow", "127.0.0.1/32"])
        let many = (0..<10_000).map { "X-H\($0): v\r\n" }.joined()
        let tooMany = try await exchange(http.port, "GET http://127.0.0.1:\(origin.port)/ HTTP/1.1\r\nHost: x\r\n\(many)\r\n")
        #expect(tooMany.hasPrefix("HTTP/1.1 431") || tooMany.hasPrefix("HTTP/1.1 400"), "\(tooMany.prefix(80))")
        let hundredAndOne = (0..<101).map { "X-H\($0): v\r\n" }.joined()
        let justOver = try await exchange(http.port, "GET http://127.0.0.1:\(origin.port)/ HTTP/1.1\r\nHost: x\r\n\(hundredAndOne)\r\n")
        #expect(justOver.hasPrefix("HTTP/1.1 431"), "\(justOver.prefix(80))")
        #expect(origin.requestLines.isEmpty, "nothing forwarded: \(origin.requestLines)")
    }

    @Test func oneClientCannotTakeEverySlot() async throws {
        let origin = try await Origin.start()
        let statusPort = try freePort()
        let socks = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--max-connections", "60", "--max-connections-per-client", "20",
                                                          "--status", "127.0.0.1:\(statusPort)"])
        // 127.0.0.2 opens 40 idle connections: 20 are held, 20 closed at accept.
        let greedy = try await offCooperativePool { () -> (held: [RawConnection], closed: Int) in
            let connections = try (0..<40).map { _ in try RawConnection(port: socks.port, source: "127.0.0.2") }
            usleep(300_000)
            var closed = 0
            for connection in connections where connection.receive(for: 0.05).closed { closed += 1 }
            return (connections, closed)
        }
        #expect(greedy.closed == 20, "\(greedy.closed) closed")
        // Another client is served at once.
        let curl = try await runCommand("/usr/bin/curl", ["-sS", "--max-time", "5", "--socks5", "127.0.0.1:\(socks.port)", "-o", "/dev/null", "-w", "%{http_code}",
                                                         "http://127.0.0.1:\(origin.port)/bytes/10"])
        #expect(curl.output.last == "200")
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("edgepool_gateway_clients_refused_total") && $0.contains("per_client_limit") && $0.hasSuffix(" 20") },
                "\(metrics.filter { $0.contains("refused") })")
        // Twenty refusals, one log line (rate-limited).
        let lines = socks.process.lines.filter { $0.contains("holds its maximum of connections") }
        #expect(lines.count == 1, "\(lines)")
        withExtendedLifetime(greedy.held) {}
    }

    @Test func flagsAModeWouldIgnoreAreRejected() async throws {
        let reverse = try await runEdgepool(["gateway", "reverse", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--deny", "10.0.0.0/8"])
        #expect(reverse.status != 0 && reverse.output.contains { $0.contains("does not use --allow/--deny") }, "\(reverse.output)")
        let exit = try await runEdgepool(["gateway", "exit", "--listen", "127.0.0.1:0", "--secret", "0123456789abcdef0123", "--user", "a:b"])
        #expect(exit.status != 0 && exit.output.contains { $0.contains("does not use --user") }, "\(exit.output)")
    }
}
