import Foundation
import ProcessSupport
import TestbedRunner

/// A network namespace made for one test and removed when the test ends (also on failure).
/// Only loopback inside it is used: multicast is switched on there, nothing leaves the host.
final class TestNamespace: @unchecked Sendable {
    let name: String
    /// The testbed runner's own lookup of iproute2's ip.
    static var ipTool: String? { Shell.ipTool }
    nonisolated(unsafe) private static var counter = 0

    /// Why namespaces cannot be used here, or nil if they can.
    static var unavailableReason: String? {
        if getuid() != 0 { return "not root" }
        if ipTool == nil { return "no ip tool (iproute2)" }
        return nil
    }

    init() throws {
        Self.counter += 1
        name = "ep-\(getpid())-\(Self.counter)"
        try Self.ip(["netns", "add", name])
        do {
            try Self.ip(["netns", "exec", name, Self.ipTool!, "link", "set", "lo", "up"])
            try Self.ip(["netns", "exec", name, Self.ipTool!, "link", "set", "lo", "multicast", "on"])
            try Self.ip(["netns", "exec", name, Self.ipTool!, "route", "add", "239.0.0.0/8", "dev", "lo"])
        } catch {
            try? Self.ip(["netns", "del", name])
            throw error
        }
    }

    deinit { try? Self.ip(["netns", "del", name]) }

    /// Runs `ip ARGS` inside the namespace (off the cooperative threads).
    func ip(_ arguments: [String]) async throws {
        let name = self.name
        try await offCooperativePool { try Self.ip(["-n", name] + arguments) }
    }

    /// Two namespaces joined by a veth pair: `a` is 10.77.0.1/24 on `va`, `b` is 10.77.0.2/24 on `vb`.
    static func pair() async throws -> (a: TestNamespace, b: TestNamespace) {
        let a = try await make(), b = try await make()
        try await offCooperativePool { try ip(["link", "add", "va", "netns", a.name, "type", "veth", "peer", "name", "vb", "netns", b.name]) }
        try await a.ip(["addr", "add", "10.77.0.1/24", "dev", "va"])
        try await b.ip(["addr", "add", "10.77.0.2/24", "dev", "vb"])
        try await a.ip(["link", "set", "va", "up"])
        try await b.ip(["link", "set", "vb", "up"])
        return (a, b)
    }

    /// Creates a namespace off the cooperative threads.
    static func make() async throws -> TestNamespace {
        try await offCooperativePool { try TestNamespace() }
    }

    /// Starts `edgepool ARGS` inside the namespace.
    func edgepool(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        try liveProcess(name, ["netns", "exec", self.name, edgepoolBinary] + arguments, executable: Self.ipTool!)
    }

    static func ip(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipTool!)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        while process.isRunning { usleep(10_000) }
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw LiveTestError("ip \(arguments.joined(separator: " ")) failed: \(message)")
        }
    }
}

extension TestNamespace {
    /// A multi-homed client and a server joined by two veth links, each shaped to `rate` in
    /// both directions (tbf):
    ///   link 1: client c1 10.78.1.1/24 ↔ server s1 10.78.1.2/24
    ///   link 2: client c2 10.78.2.1/24 ↔ server s2 10.78.2.2/24
    /// The client's second address is an MPTCP subflow endpoint (with a source route), both
    /// sides allow 2 subflows: an MPTCP connection to 10.78.1.2 opens a second subflow over link 2.
    static func multipath(rate: String = "40mbit") async throws -> (client: TestNamespace, server: TestNamespace) {
        let client = try await make(), server = try await make()
        for (index, (c, s)) in [("c1", "s1"), ("c2", "s2")].enumerated() {
            try await offCooperativePool { try ip(["link", "add", c, "netns", client.name, "type", "veth", "peer", "name", s, "netns", server.name]) }
            try await client.ip(["addr", "add", "10.78.\(index + 1).1/24", "dev", c])
            try await server.ip(["addr", "add", "10.78.\(index + 1).2/24", "dev", s])
            try await client.ip(["link", "set", c, "up"])
            try await server.ip(["link", "set", s, "up"])
            for (namespace, device) in [(client, c), (server, s)] {
                try await namespace.tc(["qdisc", "add", "dev", device, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms"])
            }
        }
        try await client.ip(["rule", "add", "from", "10.78.2.1", "table", "102"])
        try await client.ip(["route", "add", "10.78.1.0/24", "dev", "c2", "table", "102"])
        for namespace in [client, server] { try await namespace.ip(["mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2"]) }
        try await client.ip(["mptcp", "endpoint", "add", "10.78.2.1", "dev", "c2", "subflow"])
        return (client, server)
    }

    static let tcTool = ["/usr/sbin/tc", "/sbin/tc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs `tc ARGS` inside the namespace.
    func tc(_ arguments: [String]) async throws {
        guard let tc = Self.tcTool else { throw LiveTestError("no tc (iproute2)") }
        let name = self.name
        try await offCooperativePool { try Self.ip(["netns", "exec", name, tc] + arguments) }
    }

    /// Starts a tool inside the namespace.
    func run(_ name: String, _ executable: String, _ arguments: [String]) throws -> ChildProcess {
        try liveProcess(name, ["netns", "exec", self.name, executable] + arguments, executable: Self.ipTool!)
    }
}
