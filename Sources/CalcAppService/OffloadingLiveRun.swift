import Foundation
import CalcApp
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// A snapshot during a live run, for a live table.
public struct OffloadingLiveSnapshot: Sendable {
    /// Seconds of scenario time since the start; -1 announces the configured disruption.
    public var elapsed: Double
    /// Used capacity (busy fraction) of each group in the last interval.
    public var utilization: [(group: String, value: Double)]
    /// Requests completed in the last interval and their mean handling speed (calc/s).
    public var completed: Int
    public var handlingSpeed: Double
    /// What happened to jobs in the last interval: failovers, and failed-over jobs completing.
    public var events: [String] = []
}

/// One point of the offloading scenario run live on this machine: three registrars (device,
/// edge, remote) peering with ENRP, the scenario's PEs and its pool users, talking ASAP, ENRP
/// and CalcApp over real sockets on loopback (MPTCP or TCP). Each PE group's network delay
/// comes from a delaying relay in front of its PEs.
///
/// The time-scale factor k runs the experiment k times faster: PE capacities × k, request
/// sizes kept, inter-arrival times, delays, cookie and keep-alive intervals ÷ k. Measured times
/// are multiplied by k again, so results are in scenario time.
public struct OffloadingLiveRun: Sendable {
    public var scenario: OffloadingScenario
    public var users: Int
    public var timeScale: Double
    public var seed: UInt64
    public var transport: TransportProtocol = .mptcp
    public var logger = Logger(label: "edgepool.offload")
    /// What happens to the busiest PE of a group part-way through the run.
    public var disruption: Disruption?

    /// A crash (no cookies, no deregistration: failover by cookie) or a drain (deregistered,
    /// its jobs moved at a bounded rate, each with its last cookie) of one PE, at a fraction
    /// of the run.
    public struct Disruption: Sendable {
        public enum Kind: Sendable {
            case crash
            /// Sessions per second of scenario time.
            case drain(sessionsPerSecond: Double)
        }
        public var group: String
        public var at: Double
        public var kind: Kind
        public init(group: String, at: Double, kind: Kind) {
            self.group = group
            self.at = at
            self.kind = kind
        }
    }

    public init(scenario: OffloadingScenario, users: Int, timeScale: Double, seed: UInt64) {
        self.scenario = scenario
        self.users = users
        self.timeScale = timeScale
        self.seed = seed
    }

    /// Pool users and time scales a live run accepts (one machine runs them all).
    public static let usersRange = 1...500
    public static let timeScaleRange = 1.0...100.0

    /// - Throws: `ConfigurationError` (RSerPool) naming the setting.
    public func validate() throws {
        try ConfigurationError.check(users, in: Self.usersRange, "users")
        try ConfigurationError.check(timeScale, in: Self.timeScaleRange, "timeScale")
    }

    func scaled(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64((seconds / timeScale * 1e9).rounded())) }

    public func run(snapshotEvery interval: TimeAmount? = nil, snapshot: (@Sendable (OffloadingLiveSnapshot) -> Void)? = nil) async throws -> OffloadingRunResult {
        try validate()
        return try await withThrowingTaskGroup(of: Void.self) { registrarTasks in
            var registrarGroups: [ServiceGroup] = []
            return try await run(registrarTasks: &registrarTasks, registrarGroups: &registrarGroups, snapshotEvery: interval, snapshot: snapshot)
        }
    }

    private func run(registrarTasks: inout ThrowingTaskGroup<Void, Error>, registrarGroups: inout [ServiceGroup],
                     snapshotEvery interval: TimeAmount?, snapshot: (@Sendable (OffloadingLiveSnapshot) -> Void)?) async throws -> OffloadingRunResult {
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        // Three registrars, as in the experiment: on the device, at the edge, at a remote site,
        // keeping one handlespace with ENRP. Each PE registers with the nearest one (no delay:
        // the device's; under 10 ms: the edge's; else the remote one), the users resolve
        // through the device's registrar and fall back to the others.
        var registrarServices: [Registrar] = []
        var peerAddresses: [SocketAddress] = []
        for index in 0..<3 {
            var configuration = RegistrarServiceConfiguration(registrar: RegistrarConfiguration(identifier: RegistrarIdentifier(UInt32(index + 1))),
                                                              listenAddresses: [loopback])
            configuration.transport = transport
            configuration.enrpListenAddresses = [loopback]
            configuration.peers = peerAddresses
            let registrar = Registrar(configuration: configuration, logger: logger)
            registrarServices.append(registrar)
            let group = ServiceGroup(services: [registrar], logger: logger)
            registrarGroups.append(group)
            registrarTasks.addTask { try? await group.run() }
            peerAddresses += try await registrar.peerListeningAddresses
        }
        var asapAddresses: [SocketAddress] = []
        for registrar in registrarServices { asapAddresses.append(try await registrar.listeningAddresses[0]) }
        func registrarList(nearest index: Int) -> RegistrarList {
            RegistrarList([asapAddresses[index]] + asapAddresses.enumerated().filter { $0.offset != index }.map(\.element), transport: transport)
        }
        let registrars = registrarList(nearest: 0)

        // PEs.
        let secret = CookieSecret(passphrase: "offloading-\(seed)")
        let policyType = PolicyType(name: scenario.policy) ?? .priorityLeastUsed
        var elements: [(group: String, element: CalcAppPoolElement)] = []
        for group in scenario.elements {
            for _ in 0..<group.count {
                var server = CalcAppServerConfiguration(capacity: group.capacity * timeScale, maxJobs: scenario.maxJobs, secret: secret)
                server.cookieInterval = scaled(scenario.cookieInterval.seconds)
                server.cookieCalculations = scenario.cookieCalculations
                var configuration = CalcAppPoolElementConfiguration(
                    server: server, poolHandle: PoolHandle(scenario.poolHandle),
                    policy: OffloadingSimulation.policy(policyType, load: 0, increment: group.increment),
                    listenAddress: loopback,
                    registrars: registrarList(nearest: group.delay.seconds == 0 ? 0 : group.delay.seconds < 0.010 ? 1 : 2))
                configuration.transport = transport
                configuration.delay = scaled(group.delay.seconds)
                elements.append((group.name, CalcAppPoolElement(configuration: configuration, logger: logger)))
            }
        }
        // A drained PE ends by itself; the others go on.
        let elementGroup = ServiceGroup(configuration: .init(services: elements.map { .init(service: $0.element, successTerminationBehavior: .ignore) },
                                                             logger: logger))
        async let elementsRun: Void = elementGroup.run()
        for (_, element) in elements { _ = try await element.userAddress }
        // Wait until the device's registrar knows every PE (registrations and ENRP updates).
        let expected = elements.count
        for _ in 0..<100 {
            if (try? await registrarServices[0].snapshot().poolElementCount) == expected { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }

        // Users.
        var configuration = CalcAppPoolUsers.Configuration(
            users: users, poolHandle: PoolHandle(scenario.poolHandle), registrars: registrars,
            requestSize: scenario.users.requestSize,
            interArrival: Distribution(scenario.users.interArrival.kind, mean: scenario.users.interArrival.mean / timeScale,
                                       spread: scenario.users.interArrival.spread.map { $0 / timeScale }))
        configuration.seed = seed
        configuration.transport = transport
        configuration.client.keepAliveInterval = max(scaled(5), .milliseconds(20))
        configuration.client.keepAliveTimeout = max(scaled(5), .milliseconds(50))
        configuration.client.retryDelay = max(scaled(0.1), .milliseconds(1))
        configuration.client.maximumRetryDelay = max(scaled(1.6), .milliseconds(10))
        let pool = CalcAppPoolUsers(configuration: configuration, logger: logger)
        let duration = scaled(scenario.sweep.duration.seconds)
        let startedAt = NIODeadline.now()
        let busyAtStart = try await elements.asyncMap { try await $0.element.statistics().busySeconds }

        // The users run; beside them, a periodic snapshot for a live table.
        let elementList = elements
        let groups = scenario.elements.map(\.name)
        let scale = timeScale
        let every = interval ?? .seconds(1)
        let report = snapshot
        let drainWindow = NIOLockedValueBox<(element: CalcAppPoolElement, name: String, rate: Double, from: NIODeadline, to: NIODeadline)?>(nil)
        let outcome = try await withThrowingTaskGroup(of: CalcAppPoolUsers.Outcome?.self) { tasks in
            tasks.addTask { try await pool.run(for: duration) }
            if let disruption, elementList.contains(where: { $0.group == disruption.group }) {
                let candidates = elementList.filter { $0.group == disruption.group }.map(\.element)
                tasks.addTask {
                    try? await Task.sleep(nanoseconds: UInt64(Double(duration.nanoseconds) * disruption.at))
                    guard !Task.isCancelled else { return nil }
                    // The busiest PE of the group at that moment: a crash of an idle PE would
                    // show no failover at all (with the default seed the first edge PE was idle).
                    // The busiest PE of the group, once one has jobs (for up to 2 s): a crash of
                    // an idle PE shows no failover at all — with the default seed both edge PEs
                    // happened to be idle at the half-way instant, and the demo printed
                    // "0 failover(s)" under a line announcing them.
                    var victim = candidates[0], most = 0
                    for _ in 0..<40 {
                        for candidate in candidates {
                            let active = (try? await candidate.statistics().activeJobs) ?? 0
                            if active > most { (victim, most) = (candidate, active) }
                        }
                        if most > 0 { break }
                        try? await Task.sleep(nanoseconds: 50_000_000)
                    }
                    let name = "\(disruption.group) PE \(victim.configuration.identifier)"
                    switch disruption.kind {
                    case .crash:
                        victim.abort()
                        report?(OffloadingLiveSnapshot(elapsed: -1, utilization: [], completed: 0, handlingSpeed: 0,
                                                       events: ["\(name) crashes with \(most) job(s): no cookies, no deregistration; its jobs fail over"]))
                    case .drain(let rate):
                        let started = NIODeadline.now()
                        report?(OffloadingLiveSnapshot(elapsed: -1, utilization: [], completed: 0, handlingSpeed: 0,
                                                       events: ["\(name) drains with \(most) job(s): deregistered, no new session; its jobs move at \(formatNumber(rate))/s, each with its last cookie"]))
                        await victim.drain(sessionsPerSecond: rate * scale)
                        while !Task.isCancelled, ((try? await victim.statistics().activeJobs) ?? 0) > 0 {
                            try? await Task.sleep(nanoseconds: 10_000_000)
                        }
                        drainWindow.withLockedValue { $0 = (victim, name, rate, started, NIODeadline.now()) }
                    }
                    return nil
                }
            }
            if let report {
                tasks.addTask {
                    var lastBusy = busyAtStart
                    var lastCount = 0
                    var lastFailovers = 0
                    let groupOf = Dictionary(elementList.map { ($0.element.configuration.identifier, $0.group) }, uniquingKeysWith: { first, _ in first })
                    var last = NIODeadline.now()
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(every.nanoseconds))
                        guard !Task.isCancelled, let busy = try? await elementList.asyncMap({ try await $0.element.statistics().busySeconds }) else { break }
                        let now = NIODeadline.now()
                        let span = Double((now - last).nanoseconds) / 1e9
                        let records = pool.outcome.records
                        let fresh = records.dropFirst(lastCount)
                        let utilization = groups.map { group -> (String, Double) in
                            let members = elementList.indices.filter { elementList[$0].group == group }
                            let used = members.map { busy[$0] - lastBusy[$0] }.reduce(0, +) / Double(max(members.count, 1)) / span
                            return (group, min(1, used))
                        }
                        let speed = fresh.isEmpty ? 0 : fresh.map { Double($0.job.size) / ($0.handlingTime * scale) }.reduce(0, +) / Double(fresh.count)
                        let failovers = pool.failoverEvents
                        var events = failovers.dropFirst(lastFailovers).map { failover in
                            "job \(failover.job) of user \(failover.user) failed over from \(groupOf[failover.from] ?? "?") PE \(failover.from) (\(failover.reason)); "
                                + (failover.resumesFromCookie ? "it resumes from its cookie" : "no cookie yet: it starts afresh")
                        }
                        events += fresh.filter { $0.failovers > 0 }.map { record in
                            "job \(record.job.id) completed on \(groupOf[record.element] ?? "?") PE \(record.element) after \(record.failovers) failover(s)"
                        }
                        report(OffloadingLiveSnapshot(elapsed: Double((now - startedAt).nanoseconds) / 1e9 * scale,
                                                      utilization: utilization, completed: fresh.count, handlingSpeed: speed, events: events))
                        lastBusy = busy
                        lastCount = records.count
                        lastFailovers = failovers.count
                        last = now
                    }
                    return nil
                }
            }
            var result: CalcAppPoolUsers.Outcome?
            while let next = try await tasks.next() {
                if let next {
                    result = next
                    tasks.cancelAll()
                }
            }
            return result!
        }
        let busyAtEnd = try await elements.asyncMap { try await $0.element.statistics().busySeconds }
        let drain = try await drainOutcome(drainWindow.withLockedValue { $0 }, records: outcome.records, failovers: pool.failoverEvents)
        let measured = Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9

        await elementGroup.triggerGracefulShutdown()
        try? await elementsRun
        for group in registrarGroups { await group.triggerGracefulShutdown() }
        try? await registrarTasks.waitForAll()

        // Results, in scenario time.
        var utilization: [String: Double] = [:]
        var completedBy: [String: Int] = [:]
        for group in scenario.elements {
            let members = elements.indices.filter { elements[$0].group == group.name }
            utilization[group.name] = members.map { (busyAtEnd[$0] - busyAtStart[$0]) / measured }.reduce(0, +) / Double(max(members.count, 1))
            let identifiers = Set(members.map { elements[$0].element.configuration.identifier })
            completedBy[group.name] = outcome.records.filter { identifiers.contains($0.element) }.count
        }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
        let records = outcome.records
        return OffloadingRunResult(
            users: users, seed: seed, submitted: outcome.submitted, completed: records.count, inFlight: outcome.submitted - records.count,
            queuingTime: mean(records.map { $0.queuingTime * timeScale }), startupTime: mean(records.map { $0.startupTime * timeScale }),
            processingTime: mean(records.map { $0.processingTime * timeScale }), handlingTime: mean(records.map { $0.handlingTime * timeScale }),
            handlingSpeed: mean(records.map { $0.handlingSpeed / timeScale }), utilization: utilization, completedBy: completedBy,
            rejections: outcome.rejections, failovers: outcome.failovers, events: 0, drain: drain)
    }

    /// The drain's figures: the moved jobs are the ones that failed over (nothing else
    /// disrupts a drain run); the others are the jobs in the pool during the drain that stayed.
    private func drainOutcome(_ window: (element: CalcAppPoolElement, name: String, rate: Double, from: NIODeadline, to: NIODeadline)?,
                              records: [CalcAppJobRecord], failovers: [CalcAppPoolUsers.Failover]) async throws -> OffloadingDrainOutcome? {
        guard let window, case .drain? = disruption?.kind else { return nil }
        let identifier = window.element.configuration.identifier
        let moved = records.filter { $0.failovers > 0 }
        let others = records.filter { $0.failovers == 0 && $0.job.arrival < window.to && $0.completed > window.from }
        func mean(_ values: [Double], scale: Double) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) * scale }
        return OffloadingDrainOutcome(
            group: disruption?.group ?? "", element: "\(identifier)", sessionsPerSecond: window.rate,
            moved: try await window.element.statistics().moved, failedOver: failovers.filter { $0.from == identifier }.count,
            seconds: Double((window.to - window.from).nanoseconds) / 1e9 * timeScale, movedCompleted: moved.count,
            movedHandlingTime: mean(moved.map(\.handlingTime), scale: timeScale), otherHandlingTime: mean(others.map(\.handlingTime), scale: timeScale),
            movedHandlingSpeed: mean(moved.map(\.handlingSpeed), scale: 1 / timeScale), otherHandlingSpeed: mean(others.map(\.handlingSpeed), scale: 1 / timeScale))
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
