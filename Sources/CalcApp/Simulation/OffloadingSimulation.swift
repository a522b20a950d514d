import NIOCore
import RSerPoolCore
import RSerPoolWire

/// One run of the offloading scenario as a discrete-event simulation: no sockets, no clock,
/// deterministic per seed. The PEs are `CalcAppServer`s, the users `CalcAppClient`s, and the
/// registrar's choice is `Handlespace.select` — the same code the live system runs; only the
/// network is modelled: a one-way delay per PE group, one round trip to open a session, and
/// load updates that reach the registrar (on the device) after the PE's delay.
public struct OffloadingSimulation {
    public let scenario: OffloadingScenario
    public let users: Int
    public let seed: UInt64

    /// A PE of the simulation.
    struct Element {
        var group: Int
        var parameter: PoolElementParameter
        var server: CalcAppServer
        var delay: TimeAmount
        var timerGeneration: UInt64 = 0
    }

    struct User {
        var client: CalcAppClient
        var session: SessionID?
        var element: Int?
        var timerGeneration: UInt64 = 0
        var nextJobID: UInt32 = 0
        var generator: SplitMix64
    }

    enum Event: Sendable {
        case arrival(user: Int)
        case userTimer(user: Int, generation: UInt64)
        case elementTimer(element: Int, generation: UInt64)
        case selected(user: Int)
        case connected(user: Int, session: SessionID)
        case connectFailed(user: Int, session: SessionID)
        case toElement(element: Int, session: SessionID, SessionMessage)
        case elementSessionClosed(element: Int, session: SessionID)
        case toUser(user: Int, session: SessionID, SessionMessage)
        case userSessionClosed(user: Int, session: SessionID)
        case loadReport(element: Int, load: Double)
        case sample
    }

    /// Used-capacity samples per interval, for the "over time" plot.
    static let samples = 60
    private var lastBusy: [TimeAmount] = []
    private var capacityOverTime: [String: [Double]] = [:]

    private var queue = TimerQueue<Event>()
    private var elements: [Element] = []
    private var usersState: [User] = []
    private var handlespace = Handlespace()
    private var selectionGenerator: SplitMix64
    private var sessions: [SessionID: (user: Int, element: Int)] = [:]
    private var nextSession: UInt64 = 0
    private let handle: PoolHandle
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private var records: [CalcAppJobRecord] = []
    private var submitted = 0
    private(set) var eventsProcessed = 0
    private var rejections = 0
    private var failovers = 0

    public init(scenario: OffloadingScenario, users: Int, seed: UInt64) {
        self.scenario = scenario
        self.users = users
        self.seed = seed
        self.handle = PoolHandle(scenario.poolHandle)
        self.selectionGenerator = SplitMix64(seed: seed ^ 0x5E1E_C7)
    }

    /// Runs the scenario for its duration and returns the measurements.
    public mutating func run() -> OffloadingRunResult {
        setUp()
        let end = start + scenario.sweep.duration.amount
        while let (time, event) = queue.popFirst() {
            guard time <= end else { break }
            eventsProcessed += 1
            handle(event, now: time)
        }
        return result(end: end)
    }

    // MARK: - Set-up

    private mutating func setUp() {
        let policyType = PolicyType(name: scenario.policy) ?? .priorityLeastUsed
        var identifier: UInt32 = 1
        let secret = CookieSecret(passphrase: "simulation-\(seed)")
        for (groupIndex, group) in scenario.elements.enumerated() {
            for _ in 0..<group.count {
                var configuration = CalcAppServerConfiguration(capacity: group.capacity, maxJobs: scenario.maxJobs, secret: secret)
                configuration.cookieInterval = scenario.cookieInterval.amount
                configuration.cookieCalculations = scenario.cookieCalculations
                let policy = Self.policy(policyType, load: 0, increment: group.increment)
                let parameter = PoolElementParameter(identifier: PoolElementIdentifier(identifier), homeRegistrar: RegistrarIdentifier(1),
                                                     registrationLife: Int32.max, userTransport: .tcp(.v4(0x0A00_0000 | identifier), port: 9000),
                                                     policy: policy)
                identifier += 1
                elements.append(Element(group: groupIndex, parameter: parameter, server: CalcAppServer(configuration: configuration, now: start),
                                        delay: group.delay.amount))
                handlespace.register(handle, PoolElementEntry(parameter: parameter, association: nil, now: start))
            }
        }
        lastBusy = Array(repeating: .zero, count: elements.count)
        queue.schedule(.sample, at: start + sampleInterval)
        for index in 0..<users {
            var user = User(client: CalcAppClient(), generator: SplitMix64(seed: seed &* 0x9E37_79B9 &+ UInt64(index) &+ 1))
            let first = Self.duration(scenario.users.interArrival.sample(using: &user.generator))
            usersState.append(user)
            queue.schedule(.arrival(user: index), at: start + first)
        }
    }

    /// The pool policy of a PE with a load and a PLU increment (other values: neutral).
    public static func policy(_ type: PolicyType, load: Double, increment: Double) -> PoolPolicy {
        let l = PoolPolicy.load(fraction: load), i = PoolPolicy.load(fraction: increment)
        switch type.valueCount {
        case 0: return PoolPolicy(type: type)
        case 1: return PoolPolicy(type: type, values: type.isAdaptive ? [l] : [1])
        case 2: return PoolPolicy(type: type, values: [l, i])
        default: return PoolPolicy(type: type, values: [l, i, 0])
        }
    }

    static func duration(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64((seconds * 1e9).rounded())) }

    private var sampleInterval: TimeAmount { .nanoseconds(max(1, scenario.sweep.duration.amount.nanoseconds / Int64(Self.samples))) }

    // MARK: - Events

    private mutating func handle(_ event: Event, now: NIODeadline) {
        switch event {
        case .arrival(let user):
            let size = UInt64(max(1, scenario.users.requestSize.sample(using: &usersState[user].generator).rounded()))
            usersState[user].nextJobID &+= 1
            submitted += 1
            let job = CalcAppJob(id: usersState[user].nextJobID, size: size, arrival: now)
            let next = Self.duration(scenario.users.interArrival.sample(using: &usersState[user].generator))
            queue.schedule(.arrival(user: user), at: now + next)
            userActions(user, usersState[user].client.jobArrived(job, now: now), now: now)
        case .userTimer(let user, let generation):
            guard usersState[user].timerGeneration == generation else { return }
            userActions(user, usersState[user].client.timerFired(now: now), now: now)
        case .elementTimer(let element, let generation):
            guard elements[element].timerGeneration == generation else { return }
            elementActions(element, elements[element].server.timerFired(now: now), now: now)
        case .selected(let user):
            // The registrar on the device selects by the pool's policy.
            let chosen = handlespace.select(handle, count: 1, using: &selectionGenerator)?.first?.parameter
            userActions(user, usersState[user].client.selected(chosen, now: now), now: now)
        case .connected(let user, let session):
            guard usersState[user].session == session else { return }
            userActions(user, usersState[user].client.connected(now: now), now: now)
        case .connectFailed(let user, let session):
            guard usersState[user].session == session else { return }
            usersState[user].session = nil
            userActions(user, usersState[user].client.connectFailed(now: now), now: now)
        case .toElement(let element, let session, let message):
            elementActions(element, elements[element].server.received(message, on: session, now: now), now: now)
        case .elementSessionClosed(let element, let session):
            sessions[session] = nil
            elementActions(element, elements[element].server.sessionClosed(session, now: now), now: now)
        case .toUser(let user, let session, let message):
            guard usersState[user].session == session else { return }
            userActions(user, usersState[user].client.received(message, now: now), now: now)
        case .userSessionClosed(let user, let session):
            guard usersState[user].session == session else { return }
            usersState[user].session = nil
            userActions(user, usersState[user].client.sessionClosed(now: now), now: now)
        case .sample:
            for index in elements.indices { elementActions(index, elements[index].server.timerFired(now: now), now: now) }
            let interval = Double(sampleInterval.nanoseconds)
            for (groupIndex, group) in scenario.elements.enumerated() {
                let members = elements.indices.filter { elements[$0].group == groupIndex }
                let used = members.map { Double((elements[$0].server.busyTime - lastBusy[$0]).nanoseconds) / interval }.reduce(0, +)
                capacityOverTime[group.name, default: []].append(used / Double(max(members.count, 1)))
            }
            for index in elements.indices { lastBusy[index] = elements[index].server.busyTime }
            queue.schedule(.sample, at: now + sampleInterval)
        case .loadReport(let element, let load):
            // A re-registration with the new load reaches the registrar.
            var parameter = elements[element].parameter
            parameter.policy = parameter.policy.withLoad(PoolPolicy.load(fraction: load))
            elements[element].parameter = parameter
            handlespace.register(handle, PoolElementEntry(parameter: parameter, association: nil, now: now))
        }
    }

    private mutating func userActions(_ user: Int, _ actions: [CalcAppClient.Action], now: NIODeadline) {
        for action in actions {
            switch action {
            case .select:
                queue.schedule(.selected(user: user), at: now)
            case .connect(let parameter):
                let element = Int(parameter.identifier.rawValue) - 1
                nextSession += 1
                let session = SessionID(nextSession)
                sessions[session] = (user, element)
                usersState[user].session = session
                usersState[user].element = element
                queue.schedule(.connected(user: user, session: session), at: now + elements[element].delay * 2)
            case .send(let message):
                guard let session = usersState[user].session, let element = usersState[user].element else { continue }
                queue.schedule(.toElement(element: element, session: session, message), at: now + elements[element].delay)
            case .closeSession:
                guard let session = usersState[user].session, let element = usersState[user].element else { continue }
                usersState[user].session = nil
                queue.schedule(.elementSessionClosed(element: element, session: session), at: now + elements[element].delay)
            case .reportUnreachable:
                failovers += 1
            case .completed(let record):
                records.append(record)
            case .event(let event):
                if case .rejected = event { rejections += 1 }
            }
        }
        usersState[user].timerGeneration += 1
        if let deadline = usersState[user].client.nextDeadline {
            queue.schedule(.userTimer(user: user, generation: usersState[user].timerGeneration), at: deadline)
        }
    }

    private mutating func elementActions(_ element: Int, _ actions: [CalcAppServer.Action], now: NIODeadline) {
        let delay = elements[element].delay
        for action in actions {
            switch action {
            case .send(let message, let session):
                guard let owner = sessions[session] else { continue }
                queue.schedule(.toUser(user: owner.user, session: session, message), at: now + delay)
            case .close(let session):
                guard let owner = sessions[session] else { continue }
                queue.schedule(.userSessionClosed(user: owner.user, session: session), at: now + delay)
            case .loadChanged(let load):
                queue.schedule(.loadReport(element: element, load: load), at: now + delay)
            case .event:
                break
            }
        }
        elements[element].timerGeneration += 1
        if let deadline = elements[element].server.nextDeadline {
            queue.schedule(.elementTimer(element: element, generation: elements[element].timerGeneration), at: deadline)
        }
    }

    // MARK: - Results

    private mutating func result(end: NIODeadline) -> OffloadingRunResult {
        for index in elements.indices { _ = elements[index].server.timerFired(now: end) }
        let duration = Double(scenario.sweep.duration.amount.nanoseconds) / 1e9
        var utilization: [String: Double] = [:]
        var served: [String: Int] = [:]
        for (groupIndex, group) in scenario.elements.enumerated() {
            let members = elements.filter { $0.group == groupIndex }
            utilization[group.name] = members.map { Double($0.server.busyTime.nanoseconds) / 1e9 / duration }.reduce(0, +) / Double(members.count)
            let ids = Set(members.map(\.parameter.identifier))
            served[group.name] = records.filter { ids.contains($0.element) }.count
        }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
        return OffloadingRunResult(
            users: users, seed: seed, submitted: submitted, completed: records.count, inFlight: submitted - records.count,
            queuingTime: mean(records.map(\.queuingTime)), startupTime: mean(records.map(\.startupTime)),
            processingTime: mean(records.map(\.processingTime)), handlingTime: mean(records.map(\.handlingTime)),
            handlingSpeed: mean(records.map(\.handlingSpeed)), utilization: utilization, completedBy: served,
            rejections: rejections, failovers: failovers, events: eventsProcessed, capacityOverTime: capacityOverTime)
    }
}

/// The measurements of one run.
public struct OffloadingRunResult: Hashable, Sendable, Codable {
    public init(users: Int, seed: UInt64, submitted: Int, completed: Int, inFlight: Int, queuingTime: Double, startupTime: Double,
                processingTime: Double, handlingTime: Double, handlingSpeed: Double, utilization: [String: Double],
                completedBy: [String: Int], rejections: Int, failovers: Int, events: Int, capacityOverTime: [String: [Double]] = [:],
                drain: OffloadingDrainOutcome? = nil) {
        self.capacityOverTime = capacityOverTime
        self.drain = drain
        self.users = users
        self.seed = seed
        self.submitted = submitted
        self.completed = completed
        self.inFlight = inFlight
        self.queuingTime = queuingTime
        self.startupTime = startupTime
        self.processingTime = processingTime
        self.handlingTime = handlingTime
        self.handlingSpeed = handlingSpeed
        self.utilization = utilization
        self.completedBy = completedBy
        self.rejections = rejections
        self.failovers = failovers
        self.events = events
    }

    public var users: Int
    public var seed: UInt64
    public var submitted: Int
    public var completed: Int
    /// Requests still queued or being processed when the run ended.
    public var inFlight: Int
    /// Means over the completed requests, in seconds.
    public var queuingTime: Double
    public var startupTime: Double
    public var processingTime: Double
    public var handlingTime: Double
    /// Mean calculations per second per request (size / handling time).
    public var handlingSpeed: Double
    /// Fraction of the run each group's PEs were busy (their used capacity), by group.
    public var utilization: [String: Double]
    /// Requests completed by each group.
    public var completedBy: [String: Int]
    public var rejections: Int
    public var failovers: Int
    public var events: Int
    /// Used capacity of each group in equal intervals of the run (simulation only).
    public var capacityOverTime: [String: [Double]]
    /// What a drained PE's jobs saw (live runs with a drain only).
    public var drain: OffloadingDrainOutcome?
}

/// A live run's drain of one PE: how many jobs it moved, how fast, and what the moved jobs'
/// handling time was against the jobs that were in the pool at the same time and stayed put.
/// Times in scenario seconds.
public struct OffloadingDrainOutcome: Hashable, Sendable, Codable {
    public var group: String
    public var element: String
    /// The set rate, sessions per scenario second.
    public var sessionsPerSecond: Double
    /// Jobs the PE moved (its own count) and the failovers its users saw (the users' count).
    public var moved: Int
    public var failedOver: Int
    /// From the drain's start until the PE had no job left.
    public var seconds: Double
    /// Of the moved jobs, completed elsewhere by the end of the run (the rest still running).
    public var movedCompleted: Int
    /// Mean handling time of the moved jobs, and of the jobs in the pool during the drain that
    /// were not moved (nil: none).
    public var movedHandlingTime: Double?
    public var otherHandlingTime: Double?
    /// The same as handling speeds (calculations per second from arrival to completion): the
    /// moved jobs are the ones with the most work left, so their times are long anyway.
    public var movedHandlingSpeed: Double?
    public var otherHandlingSpeed: Double?

    public init(group: String, element: String, sessionsPerSecond: Double, moved: Int, failedOver: Int, seconds: Double,
                movedCompleted: Int, movedHandlingTime: Double?, otherHandlingTime: Double?,
                movedHandlingSpeed: Double?, otherHandlingSpeed: Double?) {
        self.movedHandlingSpeed = movedHandlingSpeed
        self.otherHandlingSpeed = otherHandlingSpeed
        self.group = group
        self.element = element
        self.sessionsPerSecond = sessionsPerSecond
        self.moved = moved
        self.failedOver = failedOver
        self.seconds = seconds
        self.movedCompleted = movedCompleted
        self.movedHandlingTime = movedHandlingTime
        self.otherHandlingTime = otherHandlingTime
    }
}
