import Foundation
import ProcessSupport
import Testing

/// Fast ENRP and keep-alive timers so that failures are detected in seconds.
private let fastTimers = ["--peer-heartbeat-interval", "500ms", "--peer-max-time-last-heard", "1s", "--peer-max-time-no-response", "1s",
                          "--takeover-expiry", "1s", "--keep-alive-interval", "1s", "--keep-alive-timeout", "1s"]

/// A registrar with ENRP on loopback, started with known ENRP and status ports.
private struct PeeringRegistrar {
    let process: ChildProcess
    let asap: String
    let enrp: Int
    let status: Int
    let identifier: String

    static func start(identifier: String, enrp: Int, status: Int, peers: [Int], asapPort: Int = 0, namespace: TestNamespace? = nil,
                      host: String = "127.0.0.1", peerHost: String? = nil) async throws -> PeeringRegistrar {
        let arguments = ["registrar", "--identifier", identifier, "--listen", "\(host):\(asapPort)", "--enrp-listen", "\(host):\(enrp)",
                         "--status", "\(host):\(status)", "--log-level", "info"] + fastTimers
            + peers.flatMap { ["--peer", "\(peerHost ?? host):\($0)"] }
        let process = try namespace.map { try $0.edgepool("registrar-\(identifier)", arguments) } ?? liveProcess("registrar-\(identifier)", arguments)
        let ready = try await process.waitForReady()
        guard let port = ready.port("asap") else { throw LiveTestError("no ASAP address in: \(ready)") }
        return PeeringRegistrar(process: process, asap: "\(host):\(port)", enrp: enrp, status: status, identifier: identifier)
    }
}

/// The handlespace of a registrar, from its status endpoint (as `edgepool handlespace --json` prints it).
private func handlespace(_ status: Int, namespace: TestNamespace? = nil, host: String = "127.0.0.1") async throws -> [String: Any] {
    let arguments = ["handlespace", "--status", "\(host):\(status)", "--json"]
    let process = try namespace.map { try $0.edgepool("handlespace", arguments) } ?? liveProcess("handlespace", arguments)
    guard try await process.waitForExit() == 0 else { throw LiveTestError("handlespace: \(process.lines)") }
    let json = process.lines.joined(separator: "\n")
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
        throw LiveTestError("handlespace at \(host):\(status) printed no JSON (\(json.utf8.count) bytes): \(json.prefix(300)) … \(json.suffix(300))")
    }
    return object
}

/// PE identifier → home registrar, in pool `pool`.
private func owners(_ snapshot: [String: Any], pool: String = "EchoPool") -> [String: String] {
    let pools = snapshot["pools"] as? [[String: Any]] ?? []
    let elements = pools.first { $0["handle"] as? String == pool }?["elements"] as? [[String: Any]] ?? []
    return Dictionary(uniqueKeysWithValues: elements.compactMap { e in (e["identifier"] as? String).map { ($0, e["home"] as? String ?? "") } })
}

private func checksums(_ snapshot: [String: Any]) -> [String: Int] { snapshot["checksums"] as? [String: Int] ?? [:] }

@Suite("Live: registrar redundancy (ENRP)", .serialized, .tags(.live), .timeLimit(.minutes(3)))
struct ENRPLiveTests {
    @Test func threeRegistrarsHundredPoolElementsAndAKill() async throws {
        let enrp = try (0..<3).map { _ in try freePort() }, status = try (0..<3).map { _ in try freePort() }
        var registrars: [PeeringRegistrar] = []
        for index in 0..<3 {
            registrars.append(try await PeeringRegistrar.start(identifier: "\(index + 1)", enrp: enrp[index], status: status[index],
                                                               peers: enrp.enumerated().filter { $0.offset != index }.map(\.element)))
        }
        // 100 PEs in 10 processes, spread over the registrars (each lists the others as fallbacks).
        var elements: [ChildProcess] = []
        for index in 0..<10 {
            let order = (0..<3).map { registrars[(index + $0) % 3].asap }
            let process = try liveProcess("pe-\(index)", ["pe", "--pool", "EchoPool", "--count", "10", "--reregistration-interval", "2s",
                                                          "--log-level", "warning"] + order.flatMap { ["--registrar", $0] })
            elements.append(process)
        }
        for process in elements { _ = try await process.waitForReady() }
        try await eventually(timeout: 20, "every registrar sees all 100 PEs") {
            for registrar in registrars where try await resolve(registrar.asap, pool: "EchoPool", count: 200).identifiers.count != 100 { return false }
            return true
        }
        let before = owners(try await handlespace(registrars[0].status))
        #expect(Set(before.values) == ["$00000001", "$00000002", "$00000003"], "spread over the three: \(Set(before.values))")

        // A pool user resolving continuously through all three registrars.
        let user = try liveProcess("pu", ["pu", "--pool", "EchoPool", "--requests", "60", "--interval", "100ms", "--cache-timeout", "200ms"]
                                   + registrars.flatMap { ["--registrar", $0.asap] })
        try await user.waitForLine(containing: "request 5:")
        let started = Date()
        registrars[0].process.signal(SIGKILL)
        _ = try await registrars[0].process.waitForExit()
        try await eventually(timeout: 10, "the survivors hold all 100 PEs, none homed at the dead registrar") {
            for registrar in registrars.dropFirst() {
                let view = owners(try await handlespace(registrar.status))
                if view.count != 100 || view.values.contains("$00000001") { return false }
            }
            return true
        }
        print("survivors complete \(String(format: "%.1f", Date().timeIntervalSince(started))) s after kill -9")
        #expect(try await user.waitForExit() == 0, "no resolution found the pool empty:\n\(user.lines.suffix(10).joined(separator: "\n"))")

        // The registrar comes back with the same identity: it resynchronises, checksums agree.
        registrars[0] = try await PeeringRegistrar.start(identifier: "1", enrp: enrp[0], status: status[0], peers: [enrp[1], enrp[2]])
        try await eventually(timeout: 15, "all three agree on every owner's checksum") {
            let views = try await registrars.asyncMap { try await handlespace($0.status) }
            guard views.allSatisfy({ owners($0).count == 100 }) else { return false }
            let reference = checksums(views[1])
            return views.allSatisfy { view in reference.allSatisfy { owner, sum in sum == 0xFFFF || checksums(view)[owner] == sum } }
        }
    }

    @Test func aSilentRegistrarIsTakenOverAndItsPoolElementsAdopted() async throws {
        let enrp = [try freePort(), try freePort()], status = [try freePort(), try freePort()]
        let first = try await PeeringRegistrar.start(identifier: "0x10", enrp: enrp[0], status: status[0], peers: [enrp[1]])
        let second = try await PeeringRegistrar.start(identifier: "0x20", enrp: enrp[1], status: status[1], peers: [enrp[0]])
        // PEs that know only the second registrar: only a takeover can save them.
        let elements = try liveProcess("pe", ["pe", "--pool", "EchoPool", "--count", "5", "--registrar", second.asap, "--log-level", "info"])
        try await eventually(timeout: 10, "the first registrar learns the 5 PEs") {
            owners(try await handlespace(first.status)).count == 5
        }
        second.process.signal(SIGSTOP)
        defer { second.process.signal(SIGCONT) }
        try await eventually(timeout: 10, "the first registrar takes the PEs over") {
            let view = owners(try await handlespace(first.status))
            return view.count == 5 && view.values.allSatisfy { $0 == "$00000010" }
        }
        try await elements.waitForLine(containing: "adopted by a registrar")
        #expect(try await resolve(first.asap, pool: "EchoPool").identifiers.count == 5)

        second.process.signal(SIGCONT)
        try await eventually(timeout: 10, "the second registrar catches up: the PEs are homed at the first") {
            let view = owners(try await handlespace(second.status))
            return view.count == 5 && view.values.allSatisfy { $0 == "$00000010" }
        }
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func networkPartitionBetweenRegistrarsHealsAndConverges() async throws {
        let (a, b) = try await TestNamespace.pair()
        let one = try await PeeringRegistrar.start(identifier: "0x1", enrp: 9901, status: 9090, peers: [9901], asapPort: 3863,
                                                   namespace: a, host: "10.77.0.1", peerHost: "10.77.0.2")
        let two = try await PeeringRegistrar.start(identifier: "0x2", enrp: 9901, status: 9090, peers: [9901], asapPort: 3863,
                                                   namespace: b, host: "10.77.0.2", peerHost: "10.77.0.1")
        let peA = try a.edgepool("pe-a", ["pe", "--pool", "EchoPool", "--registrar", one.asap, "--listen", "10.77.0.1:0"])
        let peB = try b.edgepool("pe-b", ["pe", "--pool", "EchoPool", "--registrar", two.asap, "--listen", "10.77.0.2:0"])
        try await peA.waitForLine(containing: "registered")
        try await peB.waitForLine(containing: "registered")
        try await eventually(timeout: 15, "both registrars see both PEs") {
            let viewA = owners(try await handlespace(9090, namespace: a, host: "10.77.0.1"))
            let viewB = owners(try await handlespace(9090, namespace: b, host: "10.77.0.2"))
            return viewA.count == 2 && viewB.count == 2
        }
        // Partition: the registrars cannot reach each other (nor the other side's PE).
        try await a.ip(["link", "set", "va", "down"])
        try await Task.sleep(nanoseconds: 6_000_000_000)
        let duringA = owners(try await handlespace(9090, namespace: a, host: "10.77.0.1"))
        #expect(duringA.values.allSatisfy { $0 != "$00000002" }, "side A gave up on registrar 2's PE: \(duringA)")
        try await a.ip(["link", "set", "va", "up"])
        try await eventually(timeout: 30, "after healing, both sides agree again") {
            let viewA = owners(try await handlespace(9090, namespace: a, host: "10.77.0.1"))
            let viewB = owners(try await handlespace(9090, namespace: b, host: "10.77.0.2"))
            return viewA.count == 2 && viewA == viewB
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
