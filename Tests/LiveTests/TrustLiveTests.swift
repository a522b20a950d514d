import Foundation
import NIOCore
import NIOPosix
import ProcessSupport
import RSerPool
import RSerPoolWire
import Testing

/// Certificates made for one test run by `openssl`: a CA, a registrar certificate for
/// 127.0.0.1, PE and PU certificates, the gateway pair's (exit-gw for 127.0.0.1, entry-gw),
/// and one from another CA.
struct TestPKI {
    let directory: String

    static var unavailableReason: String? { missingTool("/usr/bin/openssl", package: "openssl") }

    init() async throws {
        directory = temporaryFile("pki")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await Self.makeCA("ca", in: directory)
        try await Self.makeCA("rogue-ca", in: directory)
        try await Self.issue("registrar", by: "ca", subjectAltName: "IP:127.0.0.1", in: directory)
        for name in ["pr-1", "pr-2", "registrar-renewed"] { try await Self.issue(name, by: "ca", subjectAltName: "IP:127.0.0.1", in: directory) }
        for name in ["edge-1", "edge-2", "user", "entry-gw"] { try await Self.issue(name, by: "ca", subjectAltName: "DNS:\(name)", in: directory) }
        try await Self.issue("exit-gw", by: "ca", subjectAltName: "DNS:exit-gw,IP:127.0.0.1", in: directory)
        try await Self.issue("edge-1-rogue", by: "rogue-ca", subjectAltName: "DNS:edge-1", in: directory)
        try await Self.issueExpired("edge-1-expired", by: "ca", subjectAltName: "DNS:edge-1", in: directory)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// `--tls-ca … --tls-certificate NAME.pem --tls-key NAME.key`.
    func clientFlags(_ name: String?, ca: String = "ca") -> [String] {
        ["--tls-ca", path("\(ca).pem")] + (name.map { ["--tls-certificate", path("\($0).pem"), "--tls-key", path("\($0).key")] } ?? [])
    }

    /// A certificate valid for one day in 2020 only (`openssl ca` takes a start and end date;
    /// `openssl x509` of OpenSSL 3.0 does not).
    private static func issueExpired(_ name: String, by ca: String, subjectAltName: String, in directory: String) async throws {
        let database = "\(directory)/\(name)-db"
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true)
        try "".write(toFile: "\(database)/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: "\(database)/serial", atomically: true, encoding: .utf8)
        try """
        [ ca ]
        default_ca = expired
        [ expired ]
        database = \(database)/index.txt
        serial = \(database)/serial
        new_certs_dir = \(database)
        default_md = sha256
        policy = anything
        copy_extensions = copy
        [ anything ]
        commonName = supplied
        """.write(toFile: "\(database)/ca.cnf", atomically: true, encoding: .utf8)
        try await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(directory)/\(name).key",
                           "-out", "\(directory)/\(name).csr", "-subj", "/CN=\(name)", "-addext", "subjectAltName=\(subjectAltName)"])
        try await openssl(["ca", "-batch", "-notext", "-config", "\(database)/ca.cnf", "-cert", "\(directory)/\(ca).pem", "-keyfile", "\(directory)/\(ca).key",
                           "-in", "\(directory)/\(name).csr", "-out", "\(directory)/\(name).pem",
                           "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"])
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await runCommand("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw LiveTestError("openssl \(arguments.joined(separator: " ")): \(result.output.suffix(3))") }
    }

    private static func makeCA(_ name: String, in directory: String) async throws {
        try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                           "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).pem", "-subj", "/CN=EdgePool test \(name)"])
    }

    private static func issue(_ name: String, by ca: String, subjectAltName: String, in directory: String) async throws {
        try "subjectAltName=\(subjectAltName)\n".write(toFile: "\(directory)/\(name).ext", atomically: true, encoding: .utf8)
        try await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", "/CN=\(name)"])
        try await openssl(["x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/\(ca).pem", "-CAkey", "\(directory)/\(ca).key",
                           "-CAcreateserial", "-days", "2", "-out", "\(directory)/\(name).pem", "-extfile", "\(directory)/\(name).ext"])
    }
}

/// ASAP over TLS with mutual authentication and identity authorization (RFC 5355), with
/// real processes, certificates made by openssl, and `openssl s_client` as an independent
/// client.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(5))) struct TrustLiveTests {
    static func registrar(_ pki: TestPKI, _ extra: [String] = []) async throws -> (process: ChildProcess, port: Int, status: Int) {
        let status = try freePort()
        let registrar = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)",
                                                      "--tls-certificate", pki.path("registrar.pem"), "--tls-key", pki.path("registrar.key"),
                                                      "--tls-ca", pki.path("ca.pem"), "--authorize", "edge-1=EchoPool", "--log-level", "info"] + extra)
        let ready = try await registrar.waitForReady()
        #expect(ready["tls"] == "mutual", "\(ready)")
        let port = try #require(ready["asap"]?.split(separator: ":").last.flatMap { Int($0) })
        return (registrar, port, status)
    }

    static func poolElements(status: Int) async throws -> Int {
        let handlespace = try await runEdgepool(["handlespace", "--status", "127.0.0.1:\(status)", "--json"])
        let json = handlespace.output.joined()
        return try #require(json.data(using: .utf8).flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["poolElementCount"] as? Int)
    }

    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func onlyAnAuthorizedCertificateRegistersAndPoolUsersNeedOneToo() async throws {
        let pki = try await TestPKI()
        let (registrar, port, status) = try await Self.registrar(pki)
        let common = ["pe", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp", "--log-level", "info"]

        let authorized = try liveProcess("pe-edge-1", common + pki.clientFlags("edge-1"))
        _ = try await authorized.waitForReady()
        try await eventually(timeout: 5, "edge-1 registered over TLS") { try await Self.poolElements(status: status) == 1 }

        // Signed by the CA but not authorized for the pool: refused, and the PE is told why.
        let unauthorized = try liveProcess("pe-edge-2", common + pki.clientFlags("edge-2"))
        _ = try await unauthorized.waitForLine(containing: "rejected for security reasons", timeout: 5)
        // A certificate from another CA, an expired one (edge-1's name, the right CA), and none
        // at all: the handshake fails, nothing registers.
        let rogue = try liveProcess("pe-rogue", common + pki.clientFlags("edge-1-rogue"))
        let expired = try liveProcess("pe-expired", common + pki.clientFlags("edge-1-expired"))
        let anonymous = try liveProcess("pe-anonymous", common + pki.clientFlags(nil))
        let plain = try liveProcess("pe-plain", common)
        try await Task.sleep(for: .seconds(2))
        #expect(try await Self.poolElements(status: status) == 1, "only edge-1 is in the handlespace")
        #expect(expired.lines.contains { $0.uppercased().contains("CERTIFICATE_EXPIRED") }, "the expired PE hears why: \(expired.lines.suffix(3))")
        #expect(registrar.lines.contains { $0.contains("registration rejected") && $0.contains("'edge-2' is not authorized for pool EchoPool") },
                "one log line names the refusal: \(registrar.lines.suffix(5))")

        // Pool users resolve over TLS with their own certificate; without one they get nothing.
        let resolved = try await runEdgepool(["resolve", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp"] + pki.clientFlags("user"))
        #expect(resolved.status == 0 && resolved.output.contains { $0.contains("1 pool element") }, "\(resolved.output)")
        let refused = try await runEdgepool(["resolve", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp"] + pki.clientFlags(nil))
        #expect(refused.status != 0, "a PU without a certificate is not answered: \(refused.output)")

        // The gateway's reverse proxy on the pool is a pool user over TLS too.
        let gateway = try await LiveGateway.start("reverse", ["--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--allow", "127.0.0.1/32",
                                                              "--registrar-tls-ca", pki.path("ca.pem"), "--registrar-tls-certificate", pki.path("user.pem"),
                                                              "--registrar-tls-key", pki.path("user.key")])
        let message = Array("through the pool\n".utf8)
        #expect(try await rawExchange(port: gateway.port, bytes: message, wait: 1).received == message)
        withExtendedLifetime([authorized, unauthorized, rogue, expired, anonymous, plain]) {}
    }

    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func opensslSeesTLS13AndAStalledHandshakeIsClosed() async throws {
        let pki = try await TestPKI()
        let (registrar, port, status) = try await Self.registrar(pki, ["--tls-handshake-timeout", "1s", "--max-handshakes", "2"])
        // An independent client: TLS 1.3, the registrar's certificate verified against the CA.
        let client = try await runCommand("/bin/sh", ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) "
                                                          + "-cert \(pki.path("user.pem")) -key \(pki.path("user.key")) -verify_return_error -brief < /dev/null 2>&1"])
        #expect(client.output.contains { $0.contains("Protocol version: TLSv1.3") }, "\(client.output)")
        #expect(client.output.contains { $0.contains("Verification: OK") }, "\(client.output)")
        // Clients that connect and say nothing are closed after the handshake timeout; while
        // two such handshakes are under way (--max-handshakes 2), a third connection is closed
        // at once.
        let stalled = try RawConnection(port: port)
        let started = Date()
        let secondStalled = try RawConnection(port: port)
        try await Task.sleep(for: .milliseconds(200))
        let beyond = try RawConnection(port: port)
        let (_, beyondClosed) = beyond.receive(for: 0.6)
        #expect(beyondClosed, "the third handshake was refused at once, not left to the 1 s timeout")
        let (_, closed) = stalled.receive(for: 4)
        #expect(closed, "the registrar closed the stalled handshake")
        #expect(Date().timeIntervalSince(started) < 3, "within the 1 s handshake timeout (plus slack)")
        #expect(secondStalled.receive(for: 2).closed)
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(status)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("rserpool_associations_refused_total{reason=\"handshake_limit\"} 1") }, "\(metrics.filter { $0.contains("refused") })")
        #expect(registrar.lines.contains { $0.contains("association refused at accept") && $0.contains("TLS handshakes are under way") },
                "\(registrar.lines.suffix(4))")
        // Garbage instead of a ClientHello: closed at once; the registrar still serves.
        let garbage = try RawConnection(port: port)
        try garbage.sendAll(Array(repeating: 0x16, count: 5) + Array(repeating: 0xFF, count: 200))
        #expect(garbage.receive(for: 3).closed)
        // Many at once, stalled or sending garbage: each closed (beyond two at once, at
        // accept), and the registrar holds no more memory afterwards than before.
        let before = try residentKiB(of: registrar.pid)
        let closedAll = try await offCooperativePool { () -> Bool in
            var connections: [RawConnection] = []
            for index in 0..<200 {
                guard let connection = try? RawConnection(port: port) else { continue }
                if index % 2 == 0 { connection.sendSome(Array(repeating: 0x16, count: 5) + Array(repeating: 0xEE, count: 3000)) }
                connections.append(connection)
            }
            return connections.allSatisfy { $0.receive(for: 3).closed }
        }
        #expect(closedAll, "every stalled or garbage handshake was closed")
        let growth = try residentKiB(of: registrar.pid) - before
        print("TLS: 200 stalled or garbage handshakes, the registrar's resident memory \(growth >= 0 ? "+" : "")\(growth) KiB")
        #expect(growth < 8 * 1024, "the registrar grew by \(growth) KiB for 200 bad handshakes")
        let again = try await runCommand("/bin/sh", ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) "
                                                         + "-cert \(pki.path("user.pem")) -key \(pki.path("user.key")) -verify_return_error -brief < /dev/null 2>&1"])
        #expect(again.output.contains { $0.contains("Verification: OK") }, "\(again.output)")
        withExtendedLifetime(registrar) {}
    }

    /// RFC 5355's flood: one pool user over TLS sends 20,000 handle resolutions at once (with
    /// `openssl s_client`, an independent TLS client); its association is held to
    /// `--message-rate 100` after the burst of 1,000, while another user on its own TLS
    /// association is answered at once, each resolution, throughout.
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func aResolutionFloodFromOneUserIsThrottledWhileAnotherIsServed() async throws {
        let pki = try await TestPKI()
        let (registrar, port, status) = try await Self.registrar(pki, ["--message-rate", "100"])
        let pe = try liveProcess("pe-edge-1", ["pe", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp"] + pki.clientFlags("edge-1"))
        _ = try await pe.waitForReady()
        try await eventually(timeout: 5, "edge-1 registered over TLS") { try await Self.poolElements(status: status) == 1 }

        var requests = ByteBuffer()
        for _ in 0..<20_000 { requests.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: "EchoPool", option: .all))) }
        let floodFile = temporaryFile("flood"), answersFile = temporaryFile("answers")
        try Data(requests.readableBytesView).write(to: URL(fileURLWithPath: floodFile))
        // -quiet implies -ign_eof: it keeps the association after its input ends.
        let flooder = try ChildProcess("flooder", ["-c", "exec /usr/bin/openssl s_client -quiet -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) "
                                                     + "-cert \(pki.path("user.pem")) -key \(pki.path("user.key")) < \(floodFile) > \(answersFile) 2>/dev/null"],
                                       executable: "/bin/sh")
        let floodStarted = Date()

        // Another user, its own association: one resolution at a time, 60 of them at 20/s.
        let user = PoolUser(registrars: try RegistrarList([try SocketAddress(ipAddress: "127.0.0.1", port: port)], transport: .tcp)
            .withTLS(ca: pki.path("ca.pem"), certificate: pki.path("user.pem"), key: pki.path("user.key")))
        try await Task.sleep(for: .milliseconds(500))   // the flood's burst is spent by now
        var latencies: [Double] = []
        for _ in 0..<60 {
            let started = Date()
            let elements = try await user.resolve("EchoPool")
            #expect(elements.count == 1)
            latencies.append(Date().timeIntervalSince(started))
            try await Task.sleep(for: .milliseconds(50))
        }
        let floodSeconds = Date().timeIntervalSince(floodStarted)
        await user.shutdown()
        flooder.signal(SIGKILL)
        _ = try? await flooder.waitForExit(timeout: 5)

        var answers = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: answersFile)))
        var answered = 0
        while let frame = try? RSerPoolFraming.nextFrame(from: &answers),
              let decoded = try? ASAPMessage.decode(frame: frame, limits: WireLimits()) {
            if case .handleResolutionResponse = decoded.message { answered += 1 }
        }
        let allowed = 1_000 + 100 * floodSeconds
        let sorted = latencies.sorted()
        print(String(format: "TLS flood: %d of 20000 answered in %.1f s (allowed ≈ %.0f); the other user's resolutions: median %.1f ms, max %.1f ms",
                     answered, floodSeconds, allowed, sorted[sorted.count / 2] * 1000, sorted.last! * 1000))
        #expect(answered >= 1_000, "the flooder gets its burst and its rate, not nothing")
        #expect(Double(answered) <= allowed * 1.1 + 50, "held to the burst plus 100/s")
        #expect(sorted[sorted.count / 2] < 0.05 && sorted.last! < 0.25, "the other user is served at once throughout: \(sorted.suffix(3))")
        withExtendedLifetime([registrar, pe]) {}
    }

    /// Two registrars replicate over ENRP/TLS; a third with a certificate of the same CA but
    /// not named a registrar of the scope is refused.
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func peersReplicateOverTLSAndACertificateThatIsNoRegistrarIsRefused() async throws {
        let pki = try await TestPKI()
        let (enrp1, enrp2) = (try freePort(), try freePort())
        func registrar(_ name: String, enrp: Int, peer: Int, status: Int) throws -> ChildProcess {
            try liveProcess(name, ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--status", "127.0.0.1:\(status)",
                                   "--enrp-listen", "127.0.0.1:\(enrp)", "--peer", "127.0.0.1:\(peer)", "--peer-heartbeat-interval", "300ms",
                                   "--tls-certificate", pki.path("\(name).pem"), "--tls-key", pki.path("\(name).key"), "--tls-ca", pki.path("ca.pem"),
                                   "--authorize", "edge-1=EchoPool", "--peer-identity", "pr-1", "--peer-identity", "pr-2", "--log-level", "info"])
        }
        let (status1, status2) = (try freePort(), try freePort())
        let first = try registrar("pr-1", enrp: enrp1, peer: enrp2, status: status1)
        let second = try registrar("pr-2", enrp: enrp2, peer: enrp1, status: status2)
        let asap1 = try #require(try await first.waitForReady()["asap"])
        _ = try await second.waitForReady()
        let pe = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--registrar", asap1, "--transport", "tcp"] + pki.clientFlags("edge-1"))
        _ = try await pe.waitForReady()
        try await eventually(timeout: 8, "pr-2 learned the PE from pr-1 over ENRP/TLS") { try await Self.poolElements(status: status2) == 1 }

        // A registrar whose certificate (edge-1, same CA) is no registrar of the scope.
        let rogueEnrp = try freePort()
        let rogue = try liveProcess("rogue", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp", "--enrp-listen", "127.0.0.1:\(rogueEnrp)",
                                              "--peer", "127.0.0.1:\(enrp1)", "--tls-certificate", pki.path("edge-1.pem"), "--tls-key", pki.path("edge-1.key"),
                                              "--tls-ca", pki.path("ca.pem"), "--peer-identity", "pr-1", "--log-level", "info"])
        _ = try await rogue.waitForReady()
        _ = try await first.waitForLine(containing: "ENRP peer refused", timeout: 5)
        #expect(first.lines.contains { $0.contains("identity=edge-1") }, "\(first.lines.suffix(3))")
        try await Task.sleep(for: .seconds(1))
        #expect(try await Self.poolElements(status: status1) == 1, "the rogue changed nothing")
        withExtendedLifetime([pe, rogue]) {}
    }

    /// A takeover under TLS: the PE knows only pr-2; pr-2 stops answering; pr-1 takes its PE
    /// over and adopts it over TLS — pr-1 dials the PE's takeover listener, which presents the
    /// PE's certificate and checks pr-1's against the CA (the PE logs the identity), and pr-1
    /// checks the PE's identity against the pool's authorization (edge-1=EchoPool).
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func aTakenOverPoolElementIsAdoptedOverTLS() async throws {
        let pki = try await TestPKI()
        let (enrp1, enrp2) = (try freePort(), try freePort())
        let fast = ["--peer-heartbeat-interval", "500ms", "--peer-max-time-last-heard", "1s", "--peer-max-time-no-response", "1s",
                    "--takeover-expiry", "1s", "--keep-alive-interval", "1s", "--keep-alive-timeout", "1s"]
        func registrar(_ name: String, enrp: Int, peer: Int, status: Int) throws -> ChildProcess {
            try liveProcess(name, ["registrar", "--identifier", name == "pr-1" ? "0x10" : "0x20", "--listen", "127.0.0.1:0", "--transport", "tcp",
                                   "--status", "127.0.0.1:\(status)", "--enrp-listen", "127.0.0.1:\(enrp)", "--peer", "127.0.0.1:\(peer)",
                                   "--tls-certificate", pki.path("\(name).pem"), "--tls-key", pki.path("\(name).key"), "--tls-ca", pki.path("ca.pem"),
                                   "--authorize", "edge-1=EchoPool", "--peer-identity", "pr-1", "--peer-identity", "pr-2", "--log-level", "info"] + fast)
        }
        let (status1, status2) = (try freePort(), try freePort())
        let first = try registrar("pr-1", enrp: enrp1, peer: enrp2, status: status1)
        let second = try registrar("pr-2", enrp: enrp2, peer: enrp1, status: status2)
        _ = try await first.waitForReady()
        let asap2 = try #require(try await second.waitForReady()["asap"])
        let pe = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--registrar", asap2, "--transport", "tcp", "--log-level", "info",
                                        "--registrar-identity", "pr-1", "--registrar-identity", "pr-2"] + pki.clientFlags("edge-1"))
        _ = try await pe.waitForReady()
        try await eventually(timeout: 8, "pr-1 learned the PE from pr-2 over ENRP/TLS") { try await Self.poolElements(status: status1) == 1 }
        // Another certificate of the same CA (edge-2, a PE's) cannot adopt it: --registrar-identity.
        let listening = try await pe.waitForLine(containing: "listening for a registrar's adoption", timeout: 2)
        let adoption = try #require(listening.split(separator: " ").first { $0.hasPrefix("address=") }?.dropFirst("address=".count))
        let intruder = try await runCommand("/bin/sh", ["-c", "(sleep 1; printf '\\001\\000\\000\\010zzzz') | /usr/bin/openssl s_client -connect \(adoption) "
                                                            + "-CAfile \(pki.path("ca.pem")) -cert \(pki.path("edge-2.pem")) -key \(pki.path("edge-2.key")) -quiet 2>&1"])
        _ = try await pe.waitForLine(containing: "adoption refused", timeout: 3)
        #expect(pe.lines.contains { $0.contains("adoption refused") && $0.contains("identity=edge-2") }, "\(pe.lines.suffix(3)) \(intruder.output.suffix(3))")
        second.signal(SIGSTOP)
        defer { second.signal(SIGCONT) }
        _ = try await pe.waitForLine(containing: "adopted by a registrar", timeout: 15)
        #expect(pe.lines.contains { $0.contains("adoption association authenticated") && $0.contains("identity=pr-1") },
                "the adoption came over TLS from pr-1's certificate: \(pe.lines.suffix(5))")
        #expect(!first.lines.contains { $0.contains("not authorized for its pool") }, "\(first.lines.suffix(5))")
        #expect(try await Self.poolElements(status: status1) == 1)
        second.signal(SIGCONT)
        withExtendedLifetime(pe) {}
    }

    /// SSLKEYLOGFILE: the registrar writes each session's secrets in the NSS key log format,
    /// the one Wireshark reads to decrypt a capture.
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func sslKeyLogFileGetsTheSessionSecrets() async throws {
        let pki = try await TestPKI()
        let keyLog = temporaryFile("keylog")
        defer { try? FileManager.default.removeItem(atPath: keyLog) }
        let registrar = try liveProcess("registrar-keylog", ["SSLKEYLOGFILE=\(keyLog)", edgepoolBinary, "registrar", "--listen", "127.0.0.1:0", "--transport", "tcp",
                                                             "--tls-certificate", pki.path("registrar.pem"), "--tls-key", pki.path("registrar.key")],
                                        executable: "/usr/bin/env")
        let port = try #require(try await registrar.waitForReady()["asap"]?.split(separator: ":").last.flatMap { Int($0) })
        _ = try await registrar.waitForLine(containing: "TLS session secrets are written to SSLKEYLOGFILE", timeout: 2)
        let client = try await runCommand("/bin/sh", ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) -brief < /dev/null 2>&1"])
        #expect(client.output.contains { $0.contains("Protocol version: TLSv1.3") }, "\(client.output)")
        let lines = try String(contentsOfFile: keyLog, encoding: .utf8).split(separator: "\n")
        for label in ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"] {
            #expect(lines.contains { $0.hasPrefix(label + " ") && $0.split(separator: " ").count == 3 }, "\(label) in \(lines)")
        }
    }

    /// What the key log is for: Wireshark decrypts a capture of ASAP over TLS with it, and the
    /// project's Lua plugin frames the ASAP messages inside (a PE's registration and its
    /// answer, a pool user's resolution and its answer).
    @Test(.enabled(if: (TestPKI.unavailableReason ?? missingTool("/usr/bin/tshark", package: "tshark")) == nil,
                   "\((TestPKI.unavailableReason ?? missingTool("/usr/bin/tshark", package: "tshark")) ?? "")"))
    func wiresharkDecryptsACaptureWithTheKeyLogAndFramesTheASAPInside() async throws {
        let pki = try await TestPKI()
        let keyLog = temporaryFile("keylog"), capture = temporaryFile("tls") + ".pcapng"
        defer { for file in [keyLog, capture] { try? FileManager.default.removeItem(atPath: file) } }
        let port = try freePort()
        let capturer = try liveProcess("tshark", ["-i", "lo", "-f", "tcp port \(port)", "-w", capture], executable: "/usr/bin/tshark")
        try await capturer.waitForLine(containing: "Capturing on")
        try await Task.sleep(for: .milliseconds(500))   // dumpcap may still be opening the interface
        let registrar = try liveProcess("registrar-keylog", ["SSLKEYLOGFILE=\(keyLog)", edgepoolBinary, "registrar", "--listen", "127.0.0.1:\(port)",
                                                             "--transport", "tcp", "--tls-certificate", pki.path("registrar.pem"),
                                                             "--tls-key", pki.path("registrar.key"), "--tls-ca", pki.path("ca.pem"), "--authorize", "edge-1=EchoPool"],
                                        executable: "/usr/bin/env")
        _ = try await registrar.waitForReady()
        let pe = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp"] + pki.clientFlags("edge-1"))
        _ = try await pe.waitForLine(containing: "registered", timeout: 5)
        let resolved = try await runEdgepool(["resolve", "--pool", "EchoPool", "--registrar", "127.0.0.1:\(port)", "--transport", "tcp"] + pki.clientFlags("user"))
        #expect(resolved.status == 0, "\(resolved.output)")
        try await Task.sleep(for: .milliseconds(300))
        capturer.signal(SIGINT)
        _ = try await capturer.waitForExit()

        let plugin = packageRoot.appendingPathComponent("tools/wireshark/rserpool-tcp.lua").path
        let decrypted = try await runTool("/usr/bin/tshark", ["-X", "lua_script:\(plugin)", "-r", capture, "-o", "tls.keylog_file:\(keyLog)",
                                                             "-d", "tcp.port==\(port),tls", "-d", "tls.port==\(port),asaptcp",
                                                             "-Y", "asap", "-T", "fields", "-e", "asap.message_type"])
            .filter { !$0.isEmpty && !$0.hasPrefix("Running as") }
        let types = Set(decrypted.flatMap { $0.split(separator: ",").map(String.init) })
        #expect(types.isSuperset(of: ["1", "3", "5", "6"]), "registration (1), its response (3), a resolution (5) and its response (6) inside TLS: \(decrypted)")
        // Without the key log the same capture shows no ASAP at all: it was encrypted.
        let opaque = try await runTool("/usr/bin/tshark", ["-X", "lua_script:\(plugin)", "-r", capture, "-d", "tcp.port==\(port),tls",
                                                          "-d", "tls.port==\(port),asaptcp", "-Y", "asap", "-T", "fields", "-e", "asap.message_type"])
            .filter { !$0.isEmpty && !$0.hasPrefix("Running as") }
        #expect(opaque.isEmpty, "\(opaque)")
        withExtendedLifetime([registrar, pe]) {}
    }

    /// A renewed certificate is read again on SIGHUP: new associations get it, without a restart.
    @Test(.enabled(if: TestPKI.unavailableReason == nil, "\(TestPKI.unavailableReason ?? "")"))
    func aRenewedCertificateIsUsedAfterSIGHUP() async throws {
        let pki = try await TestPKI()
        let (registrar, port, _) = try await Self.registrar(pki)
        func peerCertificate() async throws -> [String] {
            try await runCommand("/bin/sh", ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) "
                                                 + "-cert \(pki.path("user.pem")) -key \(pki.path("user.key")) -verify_return_error -brief < /dev/null 2>&1"]).output
        }
        #expect(try await peerCertificate().contains { $0.contains("Peer certificate") && $0.contains("CN = registrar") && !$0.contains("renewed") })
        for suffix in ["pem", "key"] {
            _ = try? FileManager.default.removeItem(atPath: pki.path("registrar.\(suffix)"))
            try FileManager.default.copyItem(atPath: pki.path("registrar-renewed.\(suffix)"), toPath: pki.path("registrar.\(suffix)"))
        }
        registrar.signal(SIGHUP)
        _ = try await registrar.waitForLine(containing: "certificates reloaded", timeout: 3)
        let renewed = try await peerCertificate()
        #expect(renewed.contains { $0.contains("Peer certificate") && $0.contains("CN = registrar-renewed") }, "\(renewed)")
        // A broken file on the next reload: the registrar says so and keeps serving.
        try "not a certificate".write(toFile: pki.path("registrar.pem"), atomically: true, encoding: .utf8)
        registrar.signal(SIGHUP)
        _ = try await registrar.waitForLine(containing: "certificates not reloaded", timeout: 3)
        #expect(try await peerCertificate().contains { $0.contains("CN = registrar-renewed") })
    }

    @Test func aRegistrarListeningBeyondLoopbackWithoutTLSSaysSo() async throws {
        let port = try freePort()
        let registrar = try liveProcess("registrar-open", ["registrar", "--listen", "0.0.0.0:\(port)", "--transport", "tcp"])
        _ = try await registrar.waitForReady()
        _ = try await registrar.waitForLine(containing: "ASAP listens without authentication beyond loopback", timeout: 2)
    }
}
