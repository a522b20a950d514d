import Foundation
import ProcessSupport
import NIOCore
import RSerPoolWire
import Testing

/// A registrar process under attack from raw sockets on loopback: clients that never read,
/// half-sent messages, too many connections, PE hijacking and removal, foreign addresses.
/// Each time a legitimate client must still be served.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct RegistrarAbuseTests {
    static func element(_ id: UInt32, port: UInt16, address: String = "127.0.0.1") -> PoolElementParameter {
        PoolElementParameter(identifier: PoolElementIdentifier(id), registrationLife: 300_000,
                             userTransport: .tcp(IPAddress(address)!, port: port), policy: .roundRobin)
    }

    /// Registers `count` PEs over one association that stays open; returns it.
    static func registerPool(_ handle: PoolHandle, count: Int, port: Int) async throws -> RawConnection {
        try await offCooperativePool {
            let holder = try RawConnection(port: port)
            var buffer = ByteBuffer()
            for index in 0..<count {
                buffer.writeASAPMessage(.registration(ASAPRegistration(poolHandle: handle, poolElement: element(UInt32(0x7000_0000 + index), port: UInt16(20_000 + index)))))
            }
            try holder.sendAll(Array(buffer: buffer))
            let responses = holder.receiveMessages(count, within: 10)
            guard responses.count == count else { throw LiveTestError("registered \(responses.count) of \(count)") }
            return holder
        }
    }

    static func legitimateResolve(_ registrar: LiveRegistrar, pool: String) async throws -> Bool {
        let result = try await resolve(registrar.endpoint, pool: pool, count: 3, transport: "tcp")
        return result.status == 0 && result.identifiers.count == 3
    }

    @Test func aClientThatNeverReadsHoldsBoundedMemoryAndIsClosed() async throws {
        let registrar = try await LiveRegistrar.start(extra: ["--transport", "tcp", "--keep-alive-interval", "3600s", "--not-reading-timeout", "3s"])
        let holder = try await Self.registerPool("BigPool", count: 300, port: registrar.port)
        let before = try residentKiB(of: registrar.process.pid)
        // Resolutions for all 300 PEs (about 12 KB each answer), 4096 to a write, never read.
        var request = ByteBuffer()
        for _ in 0..<4096 { request.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: "BigPool", option: .all))) }
        let flood = Array(buffer: request)
        let attacker = try RawConnection(port: registrar.port, receiveBuffer: 4096)
        let sent = try await offCooperativePool {
            var total = 0
            let end = Date().addingTimeInterval(4)
            while Date() < end {
                let n = attacker.sendSome(flood)
                if n > 0 { total += n } else { usleep(10_000) }
            }
            return total
        }
        #expect(sent > 0)
        #expect(try await Self.legitimateResolve(registrar, pool: "BigPool"), "a legitimate PU is served during the attack")
        let growth = try residentKiB(of: registrar.process.pid) - before
        #expect(growth < 48 * 1024, "registrar grew by \(growth) KiB for a client that never reads (was +1.3 GB)")
        // Closed once it has left its replies unread for the not-reading timeout.
        let started = Date()
        let (bytes, closed) = try await offCooperativePool { attacker.receive(for: 15) }
        #expect(closed, "received \(bytes.count) bytes in \(Date().timeIntervalSince(started)) s")
        try await eventually(timeout: 5, "the close logged") {
            registrar.process.lines.contains { $0.contains("closing an association that does not read its replies") }
        }
        #expect(try await Self.legitimateResolve(registrar, pool: "BigPool"))
        withExtendedLifetime(holder) {}
    }

    @Test func halfSentMessagesAndTooManyConnectionsAreClosed() async throws {
        let statusPort = try freePort()
        let registrar = try await LiveRegistrar.start(extra: ["--transport", "tcp", "--partial-message-timeout", "1s", "--max-associations-per-address", "20",
                                                            "--status", "127.0.0.1:\(statusPort)"])
        let holder = try await Self.registerPool("SmallPool", count: 3, port: registrar.port)
        let outcomes = try await offCooperativePool { () -> [Bool] in
            // Three bytes of a header, then silence.
            let header = try RawConnection(port: registrar.port, source: "127.0.0.2")
            header.sendSome([0x03, 0x00, 0x00])
            // A length of 65,535 and nothing after it.
            let long = try RawConnection(port: registrar.port, source: "127.0.0.2")
            long.sendSome([0x03, 0x00, 0xFF, 0xFF, 0x80, 0x01])
            let started = Date()
            let first = header.receive(for: 4).closed, second = long.receive(for: 4).closed
            return [first, second, Date().timeIntervalSince(started) < 6]
        }
        #expect(outcomes == [true, true, true], "both closed after the 1 s partial-message timeout")
        // A slow but whole message is answered.
        let slow = try await offCooperativePool { () -> [ASAPMessage] in
            let connection = try RawConnection(port: registrar.port)
            var buffer = ByteBuffer()
            buffer.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: "SmallPool")))
            let bytes = Array(buffer: buffer)
            connection.sendSome(Array(bytes[..<5]))
            usleep(500_000)
            connection.sendSome(Array(bytes[5...]))
            return connection.receiveMessages(1, within: 3)
        }
        #expect(slow.count == 1)
        // Twenty associations from 127.0.0.2 are held; the twenty-first is closed at accept,
        // while 127.0.0.1 is still served.
        let (held, refusedClosed) = try await offCooperativePool { () -> ([RawConnection], Bool) in
            let held = try (0..<20).map { _ in try RawConnection(port: registrar.port, source: "127.0.0.2") }
            usleep(300_000)
            let extra = try RawConnection(port: registrar.port, source: "127.0.0.2")
            return (held, extra.receive(for: 3).closed)
        }
        #expect(refusedClosed)
        #expect(try await Self.legitimateResolve(registrar, pool: "SmallPool"))
        try await eventually(timeout: 5, "the refusal logged") {
            registrar.process.lines.contains { $0.contains("association refused at accept") && $0.contains("127.0.0.2") }
        }
        let metrics = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output
        #expect(metrics.contains { $0.hasPrefix("rserpool_associations_refused_total") && $0.contains("per_address_limit") })
        #expect(metrics.contains { $0.hasPrefix("rserpool_associations_closed_total") && $0.contains("partial_message_timeout") && $0.hasSuffix(" 2") },
                "\(metrics.filter { $0.contains("associations") })")
        withExtendedLifetime((holder, held)) {}
    }

    @Test func nobodyElseCanHijackRemoveOrSpoofAPoolElement() async throws {
        let registrar = try await LiveRegistrar.start(extra: ["--transport", "tcp"])
        let pe = try await startPoolElement(registrar: registrar.endpoint, pool: "VictimPool", extra: ["--transport", "tcp"])
        // The victim's parameters exactly as the registrar hands them out.
        let victim = try await offCooperativePool { () -> PoolElementParameter? in
            let connection = try RawConnection(port: registrar.port)
            try connection.send(.handleResolution(ASAPHandleResolution(poolHandle: "VictimPool")))
            guard case .handleResolutionResponse(let response)? = connection.receiveMessages(1, within: 3).first else { return nil }
            return response.elements.first
        }
        let element = try #require(victim)
        func stillThere() async throws -> Bool {
            try await resolve(registrar.endpoint, pool: "VictimPool", transport: "tcp").identifiers.count == 1
        }
        let answers = try await offCooperativePool { () -> [ASAPMessage] in
            let attacker = try RawConnection(port: registrar.port)
            try attacker.send(.registration(ASAPRegistration(poolHandle: "VictimPool", poolElement: element)))
            try attacker.send(.deregistration(ASAPDeregistration(poolHandle: "VictimPool", identifier: element.identifier)))
            return attacker.receiveMessages(2, within: 3)
        }
        guard answers.count == 2, case .registrationResponse(let registered) = answers[0], case .deregistrationResponse(let deregistered) = answers[1] else {
            Issue.record("answers: \(answers)")
            return
        }
        #expect(registered.rejected && registered.error?.code == .nonUniquePoolElementIdentifier)
        #expect(deregistered.error?.code == .rejectedDueToSecurity)
        #expect(try await stillThere())
        // Unreachable reports: three in one write, again and again, from three associations.
        try await offCooperativePool {
            let reporters = try (0..<3).map { _ in try RawConnection(port: registrar.port) }
            let end = Date().addingTimeInterval(3)
            while Date() < end {
                for reporter in reporters {
                    try reporter.send(.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: "VictimPool", identifier: element.identifier)), times: 3)
                }
                usleep(200_000)
            }
        }
        // The PE answered the probe: still there, every time.
        for _ in 0..<5 { #expect(try await stillThere()) }
        try await eventually(timeout: 5, "the probe logged") { registrar.process.lines.contains { $0.contains("probing a PE reported unreachable") } }
        // Foreign addresses: another host, the cloud metadata address.
        let foreign = try await offCooperativePool { () -> [ErrorCauseCode?] in
            let attacker = try RawConnection(port: registrar.port)
            var codes: [ErrorCauseCode?] = []
            for (index, address) in ["10.1.2.3", "169.254.169.254"].enumerated() {
                try attacker.send(.registration(ASAPRegistration(poolHandle: "VictimPool", poolElement: Self.element(UInt32(0x6000_0000 + index), port: 80, address: address))))
                if case .registrationResponse(let response)? = attacker.receiveMessages(1, within: 3).first { codes.append(response.rejected ? response.error?.code : nil) }
            }
            return codes
        }
        #expect(foreign == [.rejectedDueToSecurity, .rejectedDueToSecurity])
        // An oversize pool handle in a registration: a Registration Response with the reject
        // flag (RFC 5352 §3.3), not an ASAP Error.
        let oversize = try await offCooperativePool { () -> ASAPMessage? in
            let client = try RawConnection(port: registrar.port)
            try client.send(.registration(ASAPRegistration(poolHandle: PoolHandle(Array(repeating: 0x41, count: 200)),
                                                           poolElement: Self.element(0x5000_0001, port: 9))))
            return client.receiveMessages(1, within: 3).first
        }
        guard case .registrationResponse(let rejected)? = oversize else {
            Issue.record("answer to an oversize handle: \(String(describing: oversize))")
            return
        }
        #expect(rejected.rejected && rejected.error?.code == .invalidValues)
        #expect(try await resolve(registrar.endpoint, pool: "VictimPool", transport: "tcp").identifiers.count == 1)
        withExtendedLifetime(pe) {}
    }
}

/// Both daemons at a low open-file limit: the caps are lowered to what the limit holds, the
/// clients past them are closed at accept, and nothing spins.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct DescriptorLimitTests {
    static var unavailableReason: String? { missingTool("/usr/bin/prlimit", package: "util-linux") }

    /// CPU seconds a process has used (user + system), from /proc.
    static func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func atTheDescriptorLimitClientsAreClosedAtAcceptAndNothingSpins() async throws {
        // 320 descriptors: 256 kept free, two per relayed connection → 32 connections.
        let gateway = try liveProcess("gateway", ["--nofile=320:320", edgepoolBinary, "gateway", "socks", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1/32"],
                                      executable: "/usr/bin/prlimit")
        let port = try #require(try await gateway.waitForReady().port("listen"))
        #expect(gateway.lines.contains { $0.contains("connection cap lowered") && $0.contains("max_connections=32") }, "\(gateway.lines)")
        let registrar = try liveProcess("registrar", ["--nofile=400:400", edgepoolBinary, "registrar", "--listen", "127.0.0.1:0", "--transport", "tcp"],
                                        executable: "/usr/bin/prlimit")
        let registrarPort = try #require(try await registrar.waitForReady().port("asap"))
        #expect(registrar.lines.contains { $0.contains("association cap lowered") && $0.contains("max_associations=144") }, "\(registrar.lines)")

        let (held, closed) = try await offCooperativePool { () -> ([RawConnection], [Int]) in
            var held: [RawConnection] = []
            for _ in 0..<200 {
                if let connection = try? RawConnection(port: port) { held.append(connection) }
                if let connection = try? RawConnection(port: registrarPort) { held.append(connection) }
            }
            usleep(500_000)
            var closed = [0, 0]
            for (index, connection) in held.enumerated() where connection.receive(for: 0.01).closed { closed[index % 2] += 1 }
            return (held, closed)
        }
        #expect(closed == [200 - 32, 200 - 144], "closed at accept: \(closed)")
        // Holding the descriptors they may, neither daemon spins.
        let before = (try Self.cpuSeconds(gateway.pid), try Self.cpuSeconds(registrar.pid))
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let used = (try Self.cpuSeconds(gateway.pid) - before.0, try Self.cpuSeconds(registrar.pid) - before.1)
        #expect(used.0 < 0.3 && used.1 < 0.3, "CPU seconds in 2 s while full: gateway \(used.0), registrar \(used.1)")
        withExtendedLifetime(held) {}
    }
}
