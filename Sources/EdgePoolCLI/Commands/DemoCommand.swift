import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run EdgePool's experiments on loopback, in this process, with nothing to set up.",
        subcommands: [OffloadingDemoCommand.self, EchoDemoCommand.self],
        defaultSubcommand: OffloadingDemoCommand.self
    )
}

struct EchoDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Run a registrar, four pool elements and a crowd of pool users in one process, and watch the policy work.",
        discussion: """
        Everything runs on loopback in this process, nothing to install or configure:
          • a registrar (ASAP over MPTCP, falling back to TCP),
          • four echo PEs under Priority Least Used, like the offloading scenario: two at the
            edge (load increment 10 %), one in the cloud (50 %), one on the device (100 %);
            a PE's load is its open sessions / --max-sessions, re-registered on every change,
          • --users pool users, each opening sessions (resolve → select → connect → echo →
            hold a while → close) back to back.
        Edge PEs take the work first, the cloud joins as they fill up, the device only under
        overload. Part-way through, edge-1 crashes (no deregistration): the registrar drops it
        when its association closes and the users fail over.
        """
    )

    @Option(help: "How long to run.")
    var duration: Duration = Duration(.seconds(12))

    @Option(help: "Concurrent pool users.")
    var users: Int = 8

    @Option(help: "Sessions that make a PE 100 % loaded.")
    var maxSessions: Int = 4

    @Option(help: "Mean session length (exponentially distributed).")
    var session: Duration = Duration(.milliseconds(800))

    @Option(help: "When edge-1 crashes, as a fraction of --duration (0 or ≥1: never).")
    var crashAt: Double = 0.5

    @Option(help: "Transport for everything: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Option(help: "Log level (logs go to stderr).")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard users >= 1, users <= 1000 else { throw ValidationError("--users must be 1…1000") }
        guard maxSessions >= 1 else { throw ValidationError("--max-sessions must be at least 1") }
        guard duration.amount > .zero else { throw ValidationError("--duration must be positive") }
    }

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let logger = Logger(label: "edgepool.demo")
        let result = try await DemoRun(duration: duration.amount, users: users, maxSessions: maxSessions, meanSession: session.amount,
                                       crashAt: crashAt, transport: transport, logger: logger).run { line in
            print(line)
            fflush(nil)
        }
        guard result.answered > 0 else { throw ExitCode(1) }
    }
}

/// The demo as a value the tests can run too.
struct DemoRun {
    struct Member {
        let name: String
        let increment: Double
    }

    struct Result {
        var answered = 0
        var failed = 0
        var failovers = 0
        var sessionsPerElement: [String: Int] = [:]
    }

    static let members = [Member(name: "edge-1", increment: 0.10), Member(name: "edge-2", increment: 0.10),
                          Member(name: "cloud-1", increment: 0.50), Member(name: "device", increment: 1.00)]

    let duration: TimeAmount
    let users: Int
    let maxSessions: Int
    let meanSession: TimeAmount
    let crashAt: Double
    let transport: TransportProtocol
    let logger: Logger

    func run(output: @escaping @Sendable (String) -> Void) async throws -> Result {
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
                        let reply = try await exchangeAndHold(connection.channel, payload: "job \(index)",
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

/// Sends `payload`, waits for the echo, keeps the session open for `hold`, closes.
/// False when the PE broke the session (crash): the caller retries elsewhere.
func exchangeAndHold(_ channel: Channel, payload: String, hold: TimeAmount) async throws -> Bool {
    let promise = channel.eventLoop.makePromise(of: String.self)
    try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(ReplyCollector(expected: payload.utf8.count, promise: promise)) }.get()
    try await channel.writeAndFlush(ByteBuffer(string: payload)).get()
    let timer = channel.eventLoop.scheduleTask(in: .seconds(2)) { promise.fail(ChannelError.connectTimeout(.seconds(2))) }
    defer { timer.cancel() }
    guard (try? await promise.futureResult.get()) == payload else {
        channel.close(promise: nil)
        return false
    }
    let closed = channel.eventLoop.makePromise(of: Void.self)
    channel.closeFuture.cascade(to: closed)
    let holdTimer = channel.eventLoop.scheduleTask(in: hold) { closed.succeed(()) }
    try? await closed.futureResult.get()
    holdTimer.cancel()
    let brokenEarly = !channel.isActive
    try? await channel.close()
    return !brokenEarly
}
