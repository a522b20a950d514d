import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// `edgepool demo echo` as a value: a registrar, four echo PEs under Priority Least Used
/// (two at the edge, one in the cloud, one on the device) and a crowd of pool users in this
/// process; part-way through the busiest edge PE crashes and the users fail over. Prints a
/// live table through `output`.
public struct EchoDemo: Sendable {
    public struct Member: Sendable {
        public let name: String
        public let increment: Double
    }

    public struct Result: Sendable {
        public var answered = 0
        public var failed = 0
        public var failovers = 0
        public var sessionsPerElement: [String: Int] = [:]
    }

    public static let members = [Member(name: "edge-1", increment: 0.10), Member(name: "edge-2", increment: 0.10),
                          Member(name: "cloud-1", increment: 0.50), Member(name: "device", increment: 1.00)]

    public let duration: TimeAmount
    public let users: Int
    public let maxSessions: Int
    public let meanSession: TimeAmount
    /// When edge-1 crashes, as a fraction of `duration` (0 or ≥ 1: never).
    public let crashAt: Double
    public let transport: TransportProtocol
    public let logger: Logger

    public init(duration: TimeAmount, users: Int, maxSessions: Int, meanSession: TimeAmount, crashAt: Double,
                transport: TransportProtocol, logger: Logger) {
        self.duration = duration
        self.users = users
        self.maxSessions = maxSessions
        self.meanSession = meanSession
        self.crashAt = crashAt
        self.transport = transport
        self.logger = logger
    }

    /// Pool users one demo may run.
    public static let usersRange = 1...1000

    /// - Throws: ``ConfigurationError`` naming the setting.
    public func validate() throws {
        try ConfigurationError.check(users, in: Self.usersRange, "users")
        try ConfigurationError.check(maxSessions, atLeast: 1, "maxSessions")
        guard duration > .zero else { throw ConfigurationError(setting: "duration", "must be positive") }
    }

    public func run(output: @escaping @Sendable (String) -> Void) async throws -> Result {
        try validate()
        let group = MultiThreadedEventLoopGroup.singleton
        let handle: PoolHandle = "DemoPool"
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 0)

        // Registrar.
        var registrarConfiguration = RegistrarServiceConfiguration(
            registrar: RegistrarConfiguration(identifier: .random()), listenAddresses: [loopback])
        registrarConfiguration.transport = transport
        let registrar = Registrar(configuration: registrarConfiguration, logger: logger)
        let serviceGroup = ServiceGroup(services: [registrar], logger: logger)
        async let registrarRun: Void = serviceGroup.run()
        let registrarAddress = try await registrar.listeningAddresses[0]
        let registrars = RegistrarList([registrarAddress], transport: transport)
        output("registrar \(registrar.configuration.registrar.identifier) on \(registrarAddress.endpointDescription) (\(transport.rawValue))")

        // Pool elements.
        var servers: [String: DemoServer] = [:]
        var elements: [String: PoolElement] = [:]
        var names: [PoolElementIdentifier: String] = [:]
        var tasks: [Task<Void, Error>] = []
        for member in Self.members {
            let policy = PoolPolicy.priorityLeastUsed(load: 0, increment: PoolPolicy.load(fraction: member.increment))
            let box = NIOLockedValueBox<PoolElement?>(nil)
            let full = maxSessions
            let server = try await DemoService.echo.start(on: loopback, transport: transport, group: group) { sessions in
                box.withLockedValue { $0 }?.updatePolicy(policy.withLoad(PoolPolicy.load(fraction: Double(sessions) / Double(full))))
            }
            var registration = PoolElementRegistration(poolHandle: handle, userTransport: TransportAddress(tcp: server.localAddress!)!, policy: policy)
            registration.reregistrationInterval = .seconds(5)
            let element = PoolElement(registration: registration, registrars: registrars, logger: logger)
            box.withLockedValue { $0 = element }
            tasks.append(Task { try await element.run() })
            try await element.waitUntilRegistered()
            servers[member.name] = server
            elements[member.name] = element
            names[registration.identifier] = member.name
            output("pool element \(member.name) \(registration.identifier) on \(registration.userTransport), PLU increment \(Int(member.increment * 100)) %")
        }
        let nameOf = names

        // Pool users.
        let stats = NIOLockedValueBox(Result())
        let deadline = NIODeadline.now() + duration
        let user = PoolUser(registrars: registrars, staleCacheTimeout: .zero, logger: logger)
        let mean = Double(meanSession.nanoseconds)
        let userTasks = (0..<users).map { index in
            Task {
                var generator = SystemRandomNumberGenerator()
                while NIODeadline.now() < deadline {
                    do {
                        let connection = try await user.connect(to: handle, attempts: 4, transport: transport)
                        let name = nameOf[connection.element.identifier] ?? "\(connection.element.identifier)"
                        let reply = try await EchoExchange.exchangeAndHold(connection.channel, payload: "job \(index)",
                                                              hold: .nanoseconds(Int64(-mean * log(Double.random(in: 0.0001..<1, using: &generator)))))
                        stats.withLockedValue { s in
                            if reply { s.answered += 1; s.sessionsPerElement[name, default: 0] += 1 } else { s.failovers += 1 }
                        }
                        if !reply { await user.reportUnreachable(handle, connection.element.identifier) }
                    } catch {
                        stats.withLockedValue { $0.failed += 1 }
                        try? await Task.sleep(nanoseconds: 50_000_000)
                    }
                }
            }
        }

        // Live table.
        output("")
        output("  time   " + Self.members.map { $0.name.padding(toLength: 16, withPad: " ", startingAt: 0) }.joined() + "answered")
        output("         " + Self.members.map { _ in "sessions/served ".padding(toLength: 16, withPad: " ", startingAt: 0) }.joined())
        let start = NIODeadline.now()
        var crashed = false
        var second = 0
        while NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            second += 1
            if !crashed, crashAt > 0, crashAt < 1, NIODeadline.now() - start >= .nanoseconds(Int64(Double(duration.nanoseconds) * crashAt)) {
                crashed = true
                elements["edge-1"]?.abort()
                await servers["edge-1"]?.close()
                output("  -- edge-1 crashed: association and service gone, no deregistration --")
            }
            let row = Self.members.map { member -> String in
                let server = servers[member.name]!
                let cell = member.name == "edge-1" && crashed ? "down" : "\(server.sessions)/\(server.sessionsServed)"
                return cell.padding(toLength: 16, withPad: " ", startingAt: 0)
            }.joined()
            output(String(format: "  %3d s  ", second) + row + "\(stats.withLockedValue { $0.answered })")
        }
        for task in userTasks { await task.value }
        await user.shutdown()

        // Summary, then shut down.
        let snapshot = try await registrar.snapshot()
        let result = stats.withLockedValue { $0 }
        output("")
        output("summary: \(result.answered) sessions answered, \(result.failovers) broken by the crash and retried, \(result.failed) failed")
        for member in Self.members {
            let share = result.answered > 0 ? 100 * Double(result.sessionsPerElement[member.name] ?? 0) / Double(result.answered) : 0
            output("  \(member.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(format: "%5.1f", share)) % of sessions")
        }
        output("registrar now holds \(snapshot.poolElementCount) PE(s) in \(snapshot.pools.map(\.handle).joined(separator: ", "))")

        for name in elements.keys where name != "edge-1" || !crashed { elements[name]!.abort() }
        for task in tasks { _ = try? await task.value }
        for server in servers.values { await server.close() }
        await serviceGroup.triggerGracefulShutdown()
        try await registrarRun
        return result
    }
}
