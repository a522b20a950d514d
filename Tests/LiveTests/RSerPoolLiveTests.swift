import Foundation
import ProcessSupport
import Testing

/// Real `edgepool` processes on loopback: a registrar, PEs and PUs talking ASAP over
/// MPTCP/TCP. Serialized: they share the machine's two cores.
@Suite("Live: registrar, pool elements, pool users", .serialized, .tags(.live), .timeLimit(.minutes(3)))
struct RSerPoolLiveTests {
    @Test func threePoolElementsAndAPoolUser() async throws {
        let registrar = try await LiveRegistrar.start()
        var elements: [(ChildProcess, String)] = []
        for _ in 0..<3 { elements.append(try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool", extra: ["--policy", "rr"])) }
        let resolution = try await resolve(registrar.endpoint, pool: "EchoPool")
        #expect(resolution.status == 0)
        #expect(Set(resolution.identifiers) == Set(elements.map(\.1)))

        let (status, output) = try await runEdgepool(["pu", "--registrar", registrar.endpoint, "--pool", "EchoPool",
                                                       "--requests", "6", "--interval", "50ms"])
        #expect(status == 0, "\(output)")
        let answeredBy = Set(output.filter { $0.hasPrefix("request") }.compactMap { $0.split(separator: " ").dropFirst(2).first.map(String.init) })
        #expect(answeredBy == Set(elements.map(\.1)), "round robin spreads 6 requests over the 3 PEs: \(output)")
    }

    @Test func unknownPoolIsAClearError() async throws {
        let registrar = try await LiveRegistrar.start()
        let (status, output) = try await runEdgepool(["resolve", "--registrar", registrar.endpoint, "--pool", "NoSuchPool"])
        #expect(status == 2)
        #expect(output.joined().contains("knows no pool 'NoSuchPool'"))
    }

    @Test func killedPoolElementDisappearsAndThePoolUserFailsOver() async throws {
        let registrar = try await LiveRegistrar.start(extra: ["--keep-alive-interval", "1s", "--keep-alive-timeout", "1s"])
        var elements: [(process: ChildProcess, identifier: String)] = []
        for _ in 0..<3 { elements.append(try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool", extra: ["--policy", "rr"])) }
        let user = try liveProcess("pu", ["pu", "--registrar", registrar.endpoint, "--pool", "EchoPool", "--requests", "40",
                                          "--interval", "50ms", "--cache-timeout", "5s"])
        try await user.waitForLine(containing: "request 5:")
        let victim = elements[0]
        victim.process.signal(SIGKILL)
        #expect(try await user.waitForExit() == 0, "every request answered despite the crash:\n\(user.lines.joined(separator: "\n"))")
        try await eventually(timeout: 3, "the killed PE leaves the pool") {
            let ids = try await resolve(registrar.endpoint, pool: "EchoPool").identifiers
            return !ids.contains(victim.identifier) && ids.count == 2
        }
    }

    @Test func frozenPoolElementIsDroppedAfterTheKeepAliveTimeout() async throws {
        let registrar = try await LiveRegistrar.start(extra: ["--keep-alive-interval", "1s", "--keep-alive-timeout", "1s"])
        let frozen = try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool")
        let alive = try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool")
        frozen.process.signal(SIGSTOP)
        defer { frozen.process.signal(SIGCONT) }
        let started = Date()
        try await eventually(timeout: 6, "the frozen PE is dropped (association still open: only the keep-alive notices)") {
            try await resolve(registrar.endpoint, pool: "EchoPool").identifiers == [alive.identifier]
        }
        let took = Date().timeIntervalSince(started)
        #expect(took >= 0.8, "dropped after \(took)s, before any keep-alive could have timed out")
        try await registrar.process.waitForLine(containing: "reason=keep-alive timeout")
    }

    @Test func registrarRestartMakesPoolElementsRegisterAgain() async throws {
        let port = try freePort()
        var registrar: LiveRegistrar? = try await LiveRegistrar.start(port: port)
        let a = try await startPoolElement(registrar: "127.0.0.1:\(port)", pool: "EchoPool")
        let b = try await startPoolElement(registrar: "127.0.0.1:\(port)", pool: "EchoPool")
        registrar!.process.signal(SIGTERM)
        #expect(try await registrar!.process.waitForExit() == 0, "graceful shutdown on SIGTERM")
        registrar = nil
        let restarted = try await LiveRegistrar.start(port: port)
        try await eventually(timeout: 8, "both PEs register with the new registrar") {
            Set(try await resolve(restarted.endpoint, pool: "EchoPool").identifiers) == [a.identifier, b.identifier]
        }
    }

    @Test func gracefulShutdownDeregisters() async throws {
        let registrar = try await LiveRegistrar.start()
        let leaving = try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool")
        let staying = try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool")
        leaving.process.signal(SIGTERM)
        #expect(try await leaving.process.waitForExit() == 0)
        try await registrar.process.waitForLine(containing: "deregistered")
        #expect(try await resolve(registrar.endpoint, pool: "EchoPool").identifiers == [staying.identifier])
    }

    @Test func everyPolicyWorksBetweenRealProcesses() async throws {
        let registrar = try await LiveRegistrar.start()
        let policies = ["rr", "wrr", "rand", "wrand", "prio", "lu", "lud", "plu", "rlu", "rplu", "rlud", "plud", "rplud"]
        var processes: [String: [(ChildProcess, String)]] = [:]
        for policy in policies {
            for load in ["0.2", "0.6"] {
                processes[policy, default: []].append(try await startPoolElement(
                    registrar: registrar.endpoint, pool: "Pool-\(policy)",
                    extra: ["--policy", policy, "--load", load, "--increment", "0.1", "--degradation", "0.05", "--weight", "2"]))
            }
        }
        for policy in policies {
            let resolution = try await resolve(registrar.endpoint, pool: "Pool-\(policy)")
            #expect(Set(resolution.identifiers) == Set(processes[policy]!.map(\.1)), "\(policy): \(resolution.output)")
            #expect(resolution.output.contains { $0.contains(policy.uppercased()) }, "\(policy) shown: \(resolution.output)")
        }
        // A PE with a different policy in an existing pool is refused with cause 5.
        let intruder = try liveProcess("pe", ["pe", "--registrar", registrar.endpoint, "--pool", "Pool-rr", "--policy", "lu"])
        try await intruder.waitForLine(containing: "inconsistent pooling policy")
    }

    @Test func mptcpAndPlainTcpClientsBothWork() async throws {
        let registrar = try await LiveRegistrar.start()
        let tcp = try await startPoolElement(registrar: registrar.endpoint, pool: "MixPool", extra: ["--transport", "tcp"])
        let mptcp = try await startPoolElement(registrar: registrar.endpoint, pool: "MixPool", extra: ["--transport", "mptcp"])
        for transport in ["tcp", "mptcp"] {
            let resolution = try await resolve(registrar.endpoint, pool: "MixPool", transport: transport)
            #expect(Set(resolution.identifiers) == [tcp.identifier, mptcp.identifier], "resolving over \(transport)")
        }
        // The kernel's view: the MPTCP PE's association to the registrar is an MPTCP socket.
        let ss = try liveProcess("ss", ["-Mtn", "state", "established"], executable: "/usr/bin/ss")
        _ = try await ss.waitForExit()
        if ss.lines.contains(where: { $0.contains("Recv-Q") || $0.contains("State") }) {
            #expect(ss.lines.contains { $0.hasPrefix("mptcp") && $0.contains(":\(registrar.port)") },
                    "an MPTCP socket to the registrar's port \(registrar.port):\n\(ss.lines.joined(separator: "\n"))")
        } else {
            // The resolutions above are checked either way; only the kernel's witness is missing.
            FileHandle.standardError.write(Data("the ss -M check is left out: this ss cannot list MPTCP sockets (\(ss.lines.prefix(2))); iproute2 ≥ 5.16 can\n".utf8))
        }
    }
}

@Suite("Live: bad input to a registrar process", .serialized, .tags(.live), .timeLimit(.minutes(3)))
struct BadInputLiveTests {
    @Test func malformedMessagesGetAsapErrorsAndTheRegistrarSurvives() async throws {
        let registrar = try await LiveRegistrar.start()
        let element = try await startPoolElement(registrar: registrar.endpoint, pool: "EchoPool")

        // An unknown message type: ASAP Error (type 0x0E), cause 2, and the association stays.
        let unknown = try await rawExchange(port: registrar.port, bytes: [0x7F, 0, 0, 0x08, 0xDE, 0xAD, 0xBE, 0xEF])
        #expect(unknown.received.first == 0x0E, "ASAP Error: \(unknown.received)")
        #expect(unknown.received.count >= 12 && unknown.received[8...11] == [0, 0x02, 0, 0x0C], "cause 2 with the message: \(unknown.received)")

        // A 33-byte pool handle: ASAP Error, cause 3 (invalid values).
        let longHandle: [UInt8] = [0x05, 0, 0, 0x28, 0, 0x09, 0, 0x25] + [UInt8](repeating: 0x41, count: 33) + [0, 0, 0]
        let tooLong = try await rawExchange(port: registrar.port, bytes: longHandle)
        #expect(tooLong.received.first == 0x0E && tooLong.received.count >= 10 && tooLong.received[9] == 0x03, "\(tooLong.received)")

        // An impossible length: ASAP Error, then the registrar closes the association.
        let impossible = try await rawExchange(port: registrar.port, bytes: [0x01, 0, 0, 0x02], wait: 2)
        #expect(impossible.received.first == 0x0E)

        // Random garbage: no crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            _ = try await rawExchange(port: registrar.port, bytes: (0..<256).map { _ in UInt8.random(in: 0...255, using: &generator) }, wait: 0.1)
        }

        #expect(try await resolve(registrar.endpoint, pool: "EchoPool").identifiers == [element.identifier], "still serving")
        try await registrar.process.waitForLine(containing: "malformed message")
    }
}
