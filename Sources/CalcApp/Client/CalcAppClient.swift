import Foundation
import NIOCore
import RSerPoolWire

/// A CalcApp pool user's parameters.
public struct CalcAppClientConfiguration: Sendable, Hashable {
    /// A KEEPALIVE goes to the PE this often while it works on our job …
    public var keepAliveInterval: TimeAmount = .seconds(5)
    /// … and a PE that does not answer within this time is given up (failover).
    public var keepAliveTimeout: TimeAmount = .seconds(5)
    /// After a REJECT, or when no PE is available, wait this long before selecting again; the
    /// wait doubles with every further rejection of the same request, up to `maximumRetryDelay`
    /// (a full pool is not hammered).
    public var retryDelay: TimeAmount = .milliseconds(100)
    public var maximumRetryDelay: TimeAmount = .milliseconds(1600)

    public init() {}
}

/// A request: a number of calculations, arriving at a time.
public struct CalcAppJob: Hashable, Sendable {
    public var id: UInt32
    public var size: UInt64
    public var arrival: NIODeadline
    public init(id: UInt32, size: UInt64, arrival: NIODeadline) {
        self.id = id
        self.size = size
        self.arrival = arrival
    }
}

/// What happened to one request, with the metrics of the offloading experiment:
/// queuing (arrival → dequeue), start-up (dequeue → the PE's acceptance), processing
/// (acceptance → completion); handling time is their sum, handling speed = size / handling time.
public struct CalcAppJobRecord: Hashable, Sendable {
    public var job: CalcAppJob
    public var dequeued: NIODeadline
    public var accepted: NIODeadline
    public var completed: NIODeadline
    /// The PE that completed it.
    public var element: PoolElementIdentifier
    public var failovers: Int
    public var rejections: Int

    public var queuingTime: Double { seconds(job.arrival, dequeued) }
    public var startupTime: Double { seconds(dequeued, accepted) }
    public var processingTime: Double { seconds(accepted, completed) }
    public var handlingTime: Double { seconds(job.arrival, completed) }
    /// Calculations per second, from arrival to completion.
    public var handlingSpeed: Double { handlingTime > 0 ? Double(job.size) / handlingTime : 0 }

    private func seconds(_ from: NIODeadline, _ to: NIODeadline) -> Double { Double((to - from).nanoseconds) / 1e9 }

    /// The record as `edgepool calcapp-pu` prints it:
    /// `job 3: 1000000 calculations by $5a1e… in 1.23 s (queuing 0.00, start-up 0.01, processing 1.22), failovers 0`.
    public var line: String {
        String(format: "job %d: %llu calculations by %@ in %.2f s (queuing %.2f, start-up %.2f, processing %.2f), failovers %d",
               job.id, job.size, element.description as NSString, handlingTime, queuingTime, startupTime, processingTime, failovers)
    }

    /// The record as one JSON object (sorted keys): job, size, element, queuing, startup, processing, failovers.
    public var jsonLine: String {
        let object: [String: Any] = ["job": job.id, "size": job.size, "element": element.description, "queuing": queuingTime,
                                     "startup": startupTime, "processing": processingTime, "failovers": failovers]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}

/// A CalcApp pool user's logic: jobs wait in a FIFO queue and are handled one at a time; for
/// each, the PU asks for a PE (the caller resolves the pool handle and applies the policy),
/// connects, sends REQUEST — or, after a failover, the last cookie as a Cookie Echo, so the new
/// PE resumes where the old one was — and watches the PE with keep-alives. A REJECT means
/// "full": select again after `retryDelay`. A PE that breaks the session or stops answering is
/// reported unreachable and the job fails over.
///
/// No I/O, no clock: methods take `now` and return actions.
public struct CalcAppClient: Sendable {
    public enum Action: Sendable, Equatable {
        /// Resolve the pool and pick a PE; answer with `selected(_:now:)`.
        case select
        /// Open a session to the PE; answer with `connected(now:)` or `connectFailed(now:)`.
        case connect(PoolElementParameter)
        case send(SessionMessage)
        case closeSession
        /// Report the PE to the registrar (ASAP Endpoint Unreachable).
        case reportUnreachable(PoolElementIdentifier)
        case completed(CalcAppJobRecord)
        case event(CalcAppClientEvent)
    }

    struct Current: Sendable {
        var job: CalcAppJob
        var dequeued: NIODeadline
        var accepted: NIODeadline?
        var cookie: ByteBuffer?
        var failovers = 0
        var rejections = 0
        var consecutiveRejections = 0
        var keepAliveSentAt: NIODeadline?
        var nextKeepAlive: NIODeadline?
    }

    enum State: Sendable {
        case idle
        case selecting(Current)
        case connecting(Current, PoolElementParameter)
        case requesting(Current, PoolElementParameter, deadline: NIODeadline)
        case processing(Current, PoolElementParameter)
        case waiting(Current, until: NIODeadline)
    }

    public let configuration: CalcAppClientConfiguration
    private var state: State = .idle
    private var queue: [CalcAppJob] = []
    private var queueHead = 0

    public init(configuration: CalcAppClientConfiguration = CalcAppClientConfiguration()) {
        self.configuration = configuration
    }

    /// Jobs waiting (not counting the one in hand).
    public var queued: Int { queue.count - queueHead }
    public var isIdle: Bool { if case .idle = state { true } else { false } }
    /// The job in hand, if any.
    public var currentJob: CalcAppJob? {
        switch state {
        case .idle: nil
        case .selecting(let c), .connecting(let c, _), .requesting(let c, _, _), .processing(let c, _), .waiting(let c, _): c.job
        }
    }

    public var nextDeadline: NIODeadline? {
        switch state {
        case .waiting(_, let until): until
        case .requesting(_, _, let deadline): deadline
        case .processing(let current, _):
            if let sent = current.keepAliveSentAt { sent + configuration.keepAliveTimeout } else { current.nextKeepAlive }
        default: nil
        }
    }

    // MARK: - Events

    public mutating func jobArrived(_ job: CalcAppJob, now: NIODeadline) -> [Action] {
        queue.append(job)
        guard case .idle = state else { return [] }
        return startNext(now: now)
    }

    /// The PE to use, or nil if the pool has none right now.
    public mutating func selected(_ element: PoolElementParameter?, now: NIODeadline) -> [Action] {
        guard case .selecting(let current) = state else { return [] }
        guard let element else {
            state = .waiting(current, until: now + retryDelay(after: current.rejections))
            return [.event(.noPoolElement(current.job.id))]
        }
        state = .connecting(current, element)
        return [.connect(element)]
    }

    public mutating func connected(now: NIODeadline) -> [Action] {
        guard case .connecting(let current, let element) = state else { return [] }
        // A PE that does not answer the request within the keep-alive timeout is given up.
        state = .requesting(current, element, deadline: now + configuration.keepAliveTimeout)
        if let cookie = current.cookie {
            return [.send(.asap(.cookieEcho(ASAPCookieEcho(cookie))))]
        }
        return [.send(.calcApp(CalcAppMessage(.request, jobID: current.job.id, jobSize: current.job.size)))]
    }

    public mutating func connectFailed(now: NIODeadline) -> [Action] {
        guard case .connecting(let current, let element) = state else { return [] }
        return failOver(current, from: element, reason: "connection failed", now: now, close: false)
    }

    public mutating func received(_ message: SessionMessage, now: NIODeadline) -> [Action] {
        switch (state, message) {
        case (.requesting(var current, let element, _), .calcApp(let reply)) where reply.jobID == current.job.id:
            switch reply.type {
            case .accept:
                if current.accepted == nil { current.accepted = now }
                current.consecutiveRejections = 0
                current.nextKeepAlive = now + configuration.keepAliveInterval
                state = .processing(current, element)
                return []
            case .reject:
                current.rejections += 1
                current.consecutiveRejections += 1
                state = .waiting(current, until: now + retryDelay(after: current.consecutiveRejections))
                return [.closeSession, .event(.rejected(current.job.id, element.identifier))]
            default:
                return [.event(.unexpected(reply.type))]
            }
        case (.processing(var current, let element), .calcApp(let reply)) where reply.jobID == current.job.id:
            switch reply.type {
            case .complete:
                let record = CalcAppJobRecord(job: current.job, dequeued: current.dequeued, accepted: current.accepted ?? now,
                                              completed: now, element: element.identifier, failovers: current.failovers,
                                              rejections: current.rejections)
                state = .idle
                return [.closeSession, .completed(record)] + startNext(now: now)
            case .keepAliveAck:
                current.keepAliveSentAt = nil
                current.nextKeepAlive = now + configuration.keepAliveInterval
                state = .processing(current, element)
                return []
            case .keepAlive:
                return [.send(.calcApp(CalcAppMessage(.keepAliveAck, jobID: current.job.id)))]
            case .abort:
                return failOver(current, from: element, reason: "the PE aborted", now: now, close: true)
            default:
                return [.event(.unexpected(reply.type))]
            }
        case (.processing(var current, let element), .asap(.cookie(let cookie))):
            current.cookie = cookie.cookie
            state = .processing(current, element)
            return []
        case (.requesting(var current, let element, _), .asap(.error)):
            // The PE refused our Cookie Echo: start the job afresh elsewhere.
            current.cookie = nil
            return failOver(current, from: element, reason: "the PE refused the cookie", now: now, close: true, report: false)
        case (_, .calcApp(let reply)):
            return [.event(.unknownJob(reply.jobID, reply.type))]
        default:
            return [.event(.unexpected(nil))]
        }
    }

    /// Whether the job in hand carries a cookie (a failover then resumes from it).
    public var hasCookie: Bool {
        switch state {
        case .selecting(let current), .waiting(let current, _): current.cookie != nil
        case .connecting(let current, _), .requesting(let current, _, _), .processing(let current, _): current.cookie != nil
        default: false
        }
    }

    /// The session broke (the PE died, or closed on us).
    public mutating func sessionClosed(now: NIODeadline) -> [Action] {
        switch state {
        case .requesting(let current, let element, _), .processing(let current, let element):
            return failOver(current, from: element, reason: "the session broke", now: now, close: false)
        default:
            return []
        }
    }

    public mutating func timerFired(now: NIODeadline) -> [Action] {
        switch state {
        case .waiting(let current, let until) where until <= now:
            state = .selecting(current)
            return [.select]
        case .requesting(let current, let element, let deadline) where deadline <= now:
            return failOver(current, from: element, reason: "no answer to the request", now: now, close: true)
        case .processing(var current, let element):
            if let sent = current.keepAliveSentAt {
                guard now - sent >= configuration.keepAliveTimeout else { return [] }
                return failOver(current, from: element, reason: "no keep-alive answer", now: now, close: true)
            }
            guard let due = current.nextKeepAlive, due <= now else { return [] }
            current.keepAliveSentAt = now
            current.nextKeepAlive = nil
            state = .processing(current, element)
            return [.send(.calcApp(CalcAppMessage(.keepAlive, jobID: current.job.id)))]
        default:
            return []
        }
    }

    // MARK: - Internals

    func retryDelay(after rejections: Int) -> TimeAmount {
        let doublings = min(max(rejections - 1, 0), 16)
        return min(configuration.retryDelay * Int64(1 << doublings), configuration.maximumRetryDelay)
    }

    private mutating func startNext(now: NIODeadline) -> [Action] {
        guard queueHead < queue.count else {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
            return []
        }
        let job = queue[queueHead]
        queueHead += 1
        if queueHead > 1024, queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        state = .selecting(Current(job: job, dequeued: now))
        return [.select]
    }

    private mutating func failOver(_ current: Current, from element: PoolElementParameter, reason: String, now: NIODeadline,
                                   close: Bool, report: Bool = true) -> [Action] {
        var next = current
        next.failovers += 1
        next.keepAliveSentAt = nil
        next.nextKeepAlive = nil
        state = .selecting(next)
        var actions: [Action] = close ? [.closeSession] : []
        if report { actions.append(.reportUnreachable(element.identifier)) }
        actions.append(.event(.failover(current.job.id, element.identifier, reason)))
        actions.append(.select)
        return actions
    }
}

/// What happened in a CalcApp pool user.
public enum CalcAppClientEvent: Sendable, Equatable {
    case noPoolElement(UInt32)
    case rejected(UInt32, PoolElementIdentifier)
    case failover(UInt32, PoolElementIdentifier, String)
    case unknownJob(UInt32, CalcAppMessageType)
    case unexpected(CalcAppMessageType?)
}
