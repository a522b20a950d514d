import NIOCore
import RSerPoolWire

/// Identifies one PU↔PE session (one connection).
public struct SessionID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "session \(rawValue)" }
}

/// A CalcApp PE's service parameters.
public struct CalcAppServerConfiguration: Sendable, Hashable {
    /// Calculations per second, shared equally by the active jobs (processor sharing).
    public var capacity: Double
    /// Jobs at once; one more is rejected.
    public var maxJobs: Int = 4
    /// A cookie goes to the PU at least this often while a job runs …
    public var cookieInterval: TimeAmount = .seconds(5)
    /// … and after at most this many calculations.
    public var cookieCalculations: Double = 5e6
    /// The pool's secret for sealing cookies.
    public var secret: CookieSecret
    /// The largest job accepted (calculations). Bigger ones, and empty ones, are refused.
    public var maximumJobSize: UInt64 = 1 << 53

    public init(capacity: Double, maxJobs: Int = 4, secret: CookieSecret) {
        self.capacity = capacity
        self.maxJobs = maxJobs
        self.secret = secret
    }
}

/// A CalcApp pool element's logic: jobs share the capacity equally (processor sharing), the
/// shares are re-planned whenever a job starts or ends, a job beyond `maxJobs` is rejected,
/// each job's state goes to its PU as a sealed cookie every `cookieInterval` or
/// `cookieCalculations`, and a Cookie Echo resumes a job where the cookie says.
///
/// No I/O, no clock: every method takes `now`; `nextDeadline` says when to call `timerFired`.
public struct CalcAppServer: Sendable {
    public enum Action: Sendable, Equatable {
        case send(SessionMessage, to: SessionID)
        case close(SessionID)
        /// The load (jobs / maxJobs) changed: report it to the registrar.
        case loadChanged(Double)
        case event(CalcAppServerEvent)
    }

    struct Job: Sendable {
        var session: SessionID
        var jobID: UInt32
        var size: Double
        var completed: Double
        var lastCookieAt: NIODeadline
        var lastCookieCompleted: Double
    }

    public let configuration: CalcAppServerConfiguration
    private(set) var jobs: [SessionID: Job] = [:]
    private var lastUpdate: NIODeadline
    /// Time with at least one job, for the used-capacity statistics.
    public private(set) var busyTime: TimeAmount = .zero
    public private(set) var calculationsDone: Double = 0
    public private(set) var jobsAccepted = 0
    public private(set) var jobsRejected = 0
    public private(set) var jobsCompleted = 0
    /// Jobs handed to other PEs by a drain (their last cookie sent, the session closed).
    public private(set) var jobsMoved = 0
    /// Set once the PE drains: no new job, the active ones moved off one per interval.
    public private(set) var drain: Drain?

    /// A drain in progress (the IMS use case of moving users off a server at a bounded rate).
    public struct Drain: Sendable, Equatable {
        /// Time between two moved sessions (1 / sessions per second).
        public var interval: TimeAmount
        /// When the next session is moved.
        public var nextMove: NIODeadline
        /// Set when the last job has left.
        public var finished = false
    }

    public init(configuration: CalcAppServerConfiguration, now: NIODeadline) {
        self.configuration = configuration
        self.lastUpdate = now
    }

    public var activeJobs: Int { jobs.count }
    /// Jobs / maxJobs: what the PE reports to the registrar.
    public var load: Double { Double(jobs.count) / Double(configuration.maxJobs) }
    /// Calculations per second in use now.
    public var usedCapacity: Double { jobs.isEmpty ? 0 : configuration.capacity }

    // MARK: - Events

    public mutating func received(_ message: SessionMessage, on session: SessionID, now: NIODeadline) -> [Action] {
        advance(to: now)
        switch message {
        case .calcApp(let message):
            switch message.type {
            case .request:
                return start(session: session, jobID: message.jobID, size: message.jobSize, completed: 0, now: now)
            case .keepAlive:
                guard let job = jobs[session] else { return [] }
                return [.send(.calcApp(CalcAppMessage(.keepAliveAck, jobID: job.jobID)), to: session)]
            case .keepAliveAck:
                return []
            case .abort:
                guard jobs.removeValue(forKey: session) != nil else { return [] }
                return [.loadChanged(load), .event(.aborted(session))] + moveDueSessions(now: now)
            default:
                return [.event(.protocolError(session, "\(message.type) is not for a PE")), .close(session)]
            }
        case .asap(.cookieEcho(let echo)):
            do {
                let cookie = try CalcAppCookie(opening: echo.cookie, with: configuration.secret)
                return start(session: session, jobID: cookie.jobID, size: cookie.jobSize, completed: cookie.completed, now: now, resumed: true)
            } catch {
                let reply = ASAPMessage.error(ASAPErrorMessage(OperationError(.rejectedDueToSecurity)))
                return [.send(.asap(reply), to: session), .close(session), .event(.forgedCookie(session, error.description))]
            }
        case .asap(let message):
            return [.event(.protocolError(session, "unexpected \(message.type)"))]
        }
    }

    /// The session ended (the PU left or broke): its job is dropped.
    public mutating func sessionClosed(_ session: SessionID, now: NIODeadline) -> [Action] {
        advance(to: now)
        guard jobs.removeValue(forKey: session) != nil else { return [] }
        return [.loadChanged(load)] + moveDueSessions(now: now)
    }

    public mutating func timerFired(now: NIODeadline) -> [Action] {
        advance(to: now)
        var actions: [Action] = []
        for session in jobs.keys.sorted() {
            var job = jobs[session]!
            if job.size - job.completed <= Self.completionTolerance {
                jobs[session] = nil
                jobsCompleted += 1
                actions.append(.send(.calcApp(CalcAppMessage(.complete, jobID: job.jobID, jobSize: UInt64(job.size), completed: UInt64(job.size))), to: session))
                actions.append(.event(.completed(session, jobID: job.jobID)))
                continue
            }
            if now - job.lastCookieAt >= configuration.cookieInterval
                || job.completed - job.lastCookieCompleted >= configuration.cookieCalculations - Self.completionTolerance {
                job.lastCookieAt = now
                job.lastCookieCompleted = job.completed
                jobs[session] = job
                actions.append(.send(.asap(.cookie(ASAPCookie(cookie(of: job).sealed(with: configuration.secret)))), to: session))
            }
        }
        if actions.contains(where: { if case .event(.completed) = $0 { true } else { false } }) { actions.append(.loadChanged(load)) }
        return actions + moveDueSessions(now: now)
    }

    /// The drain's part of a timer: the session due now leaves (one per interval; a late
    /// timer does not move a burst), and the drain finishes when no job is left.
    private mutating func moveDueSessions(now: NIODeadline) -> [Action] {
        guard var drain, !drain.finished else { return [] }
        var actions: [Action] = []
        if now >= drain.nextMove, let session = jobs.keys.max(by: { remaining(jobs[$0]!) < remaining(jobs[$1]!) || (remaining(jobs[$0]!) == remaining(jobs[$1]!) && $0 > $1) }) {
            let job = jobs.removeValue(forKey: session)!
            jobsMoved += 1
            actions += [.send(.asap(.cookie(ASAPCookie(cookie(of: job).sealed(with: configuration.secret)))), to: session), .close(session),
                        .loadChanged(load), .event(.moved(session, jobID: job.jobID, completed: UInt64(job.completed.rounded(.down))))]
            drain.nextMove = now + drain.interval
        }
        if jobs.isEmpty {
            drain.finished = true
            actions.append(.event(.drained(moved: jobsMoved)))
        }
        self.drain = drain
        return actions
    }

    private func remaining(_ job: Job) -> Double { job.size - job.completed }

    /// Graceful shutdown: every PU gets a last cookie (so that it resumes elsewhere), then its
    /// session closes.
    public mutating func shutdown(now: NIODeadline) -> [Action] {
        advance(to: now)
        var actions: [Action] = []
        for session in jobs.keys.sorted() {
            let job = jobs[session]!
            actions.append(.send(.asap(.cookie(ASAPCookie(cookie(of: job).sealed(with: configuration.secret)))), to: session))
            actions.append(.close(session))
        }
        jobs = [:]
        actions.append(.loadChanged(0))
        return actions
    }

    /// Starts a drain: from now on every new job and Cookie Echo is rejected (the PU takes it to
    /// another PE), and the active jobs leave one at a time, `sessionsPerSecond` at most, each
    /// with a last cookie so that it resumes elsewhere where it stopped here: the job with the
    /// most work left first (it would hold this PE longest). The first leaves at once;
    /// ``CalcAppServerEvent/drained(moved:)`` comes when the last has left. Draining again
    /// changes only the rate.
    public mutating func startDrain(sessionsPerSecond: Double, now: NIODeadline) -> [Action] {
        precondition(sessionsPerSecond > 0 && sessionsPerSecond.isFinite)
        advance(to: now)
        let interval = Self.duration(seconds: 1 / sessionsPerSecond)
        if drain != nil {
            drain!.interval = interval
            return []
        }
        drain = Drain(interval: interval, nextMove: now)
        return [.event(.drainStarted(activeJobs: jobs.count))] + moveDueSessions(now: now)
    }

    /// When the next job completes, the next cookie is due, or the drain moves the next session.
    public var nextDeadline: NIODeadline? {
        guard !jobs.isEmpty else { return nil }
        let rate = configuration.capacity / Double(jobs.count)
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline) { if next == nil || deadline < next! { next = deadline } }
        for job in jobs.values {
            consider(lastUpdate + Self.duration(seconds: (job.size - job.completed) / rate))
            consider(job.lastCookieAt + configuration.cookieInterval)
            consider(lastUpdate + Self.duration(seconds: (job.lastCookieCompleted + configuration.cookieCalculations - job.completed) / rate))
        }
        if let drain { consider(drain.nextMove) }
        return next
    }

    // MARK: - Internals

    static let completionTolerance = 0.5

    /// A duration rounded up to the next nanosecond, so that the work is done when it fires.
    static func duration(seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(max(0, (seconds * 1e9).rounded(.up))))
    }

    private mutating func start(session: SessionID, jobID: UInt32, size: UInt64, completed: UInt64, now: NIODeadline,
                                resumed: Bool = false) -> [Action] {
        guard size > 0, size <= configuration.maximumJobSize, completed <= size else {
            return [.send(.calcApp(CalcAppMessage(.reject, jobID: jobID, jobSize: size)), to: session),
                    .event(.invalidJob(session, "job size \(size) (completed \(completed)) outside 1…\(configuration.maximumJobSize)"))]
        }
        if drain != nil {
            jobsRejected += 1
            return [.send(.calcApp(CalcAppMessage(.reject, jobID: jobID, jobSize: size)), to: session), .event(.rejected(session, jobID: jobID))]
        }
        guard jobs[session] == nil else {
            return [.send(.calcApp(CalcAppMessage(.reject, jobID: jobID, jobSize: size)), to: session),
                    .event(.protocolError(session, "a second job on one session"))]
        }
        guard jobs.count < configuration.maxJobs else {
            jobsRejected += 1
            return [.send(.calcApp(CalcAppMessage(.reject, jobID: jobID, jobSize: size)), to: session), .event(.rejected(session, jobID: jobID))]
        }
        jobsAccepted += 1
        jobs[session] = Job(session: session, jobID: jobID, size: Double(size), completed: Double(completed),
                            lastCookieAt: now, lastCookieCompleted: Double(completed))
        return [.send(.calcApp(CalcAppMessage(.accept, jobID: jobID, jobSize: size, completed: completed)), to: session),
                .loadChanged(load), .event(resumed ? .resumed(session, jobID: jobID, completed: completed) : .accepted(session, jobID: jobID))]
    }

    private mutating func advance(to now: NIODeadline) {
        guard now > lastUpdate else { return }
        let elapsed = Double((now - lastUpdate).nanoseconds) / 1e9
        if !jobs.isEmpty {
            let rate = configuration.capacity / Double(jobs.count)
            for session in jobs.keys {
                let done = min(elapsed * rate, jobs[session]!.size - jobs[session]!.completed)
                jobs[session]!.completed += done
                calculationsDone += done
            }
            busyTime = busyTime + (now - lastUpdate)
        }
        lastUpdate = now
    }

    private func cookie(of job: Job) -> CalcAppCookie {
        CalcAppCookie(jobID: job.jobID, jobSize: UInt64(job.size), completed: UInt64(job.completed.rounded(.down)))
    }
}

/// What happened in a CalcApp PE.
public enum CalcAppServerEvent: Sendable, Equatable {
    case accepted(SessionID, jobID: UInt32)
    case resumed(SessionID, jobID: UInt32, completed: UInt64)
    case rejected(SessionID, jobID: UInt32)
    case completed(SessionID, jobID: UInt32)
    case aborted(SessionID)
    case forgedCookie(SessionID, String)
    case invalidJob(SessionID, String)
    case protocolError(SessionID, String)
    /// A drain began with this many jobs to move.
    case drainStarted(activeJobs: Int)
    /// A drain moved this job off (its last cookie sent, its session closed).
    case moved(SessionID, jobID: UInt32, completed: UInt64)
    /// The drain is over: no job is left; `moved` jobs went to other PEs.
    case drained(moved: Int)
}
