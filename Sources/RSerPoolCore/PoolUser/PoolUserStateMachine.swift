import NIOCore
import RSerPoolWire

/// A pool user's protocol state (RFC 5351 §2.3) without sockets or clocks: the association
/// to a registrar (which one, opening or open), the handle resolutions waiting for it and the
/// ones sent (a registrar answers in order), their timeouts, the rotation to the next
/// registrar when one does not answer, the wait for a Server Announce when no registrar is
/// known yet, and the cache of answers with local selection.
///
/// Every input takes the current time; every output is an ``Action`` for the driver to carry
/// out. After each call the driver arms one timer for ``nextDeadline`` and calls
/// ``timerFired(now:)`` when it fires.
public struct PoolUserStateMachine: Sendable {
    public struct Configuration: Sendable {
        /// How long a registrar gets to answer a resolution before the next one is tried.
        public var requestTimeout: TimeAmount
        /// Whether registrars are also found by Server Announces (then, with none known, a
        /// request waits up to the table's announce timeout for one).
        public var listensForAnnounces: Bool

        public init(requestTimeout: TimeAmount = .seconds(2), listensForAnnounces: Bool = false) {
            self.requestTimeout = requestTimeout
            self.listensForAnnounces = listensForAnnounces
        }
    }

    /// Names one resolution from ``resolve(_:maximumCount:now:)`` to its outcome.
    public struct RequestID: Hashable, Sendable, CustomStringConvertible {
        public let value: UInt64
        public var description: String { "#\(value)" }
    }

    /// Names one association attempt; events of an older one are ignored.
    public struct AssociationID: Hashable, Sendable {
        public let value: UInt64
    }

    /// Why a resolution failed.
    public enum Failure: Error, Hashable, Sendable {
        /// No registrar could be reached (the detail says what was tried).
        case noRegistrarReachable(String)
        /// The registrar did not answer within the request timeout.
        case registrarTimeout(TimeAmount)
        case shutDown
    }

    public enum Action: Hashable, Sendable {
        /// Open an association to this registrar; report ``associationEstablished(_:now:)``
        /// or ``associationFailed(_:reason:now:)``.
        case connect(AssociationID, TransportAddress)
        /// Send on the open association.
        case send(AssociationID, ASAPMessage)
        /// Close this association (the driver reports no closure for it).
        case close(AssociationID)
        case succeed(RequestID, ASAPHandleResolutionResponse)
        case fail(RequestID, Failure)
    }

    private struct Request: Sendable {
        var id: RequestID
        var handle: PoolHandle
        var maximumCount: Int?
        /// Registrars still to try (the request fails when it reaches zero).
        var attemptsLeft: Int
        /// When a sent request times out.
        var deadline: NIODeadline?

        var message: ASAPMessage {
            .handleResolution(ASAPHandleResolution(poolHandle: handle, option: maximumCount.map { HandleResolutionOption(items: UInt32(clamping: $0)) }))
        }
    }

    private enum Association: Sendable {
        case none
        case opening(AssociationID, TransportAddress)
        case open(AssociationID, TransportAddress)

        var id: AssociationID? {
            switch self {
            case .none: nil
            case .opening(let id, _), .open(let id, _): id
            }
        }
    }

    public let configuration: Configuration
    /// The registrars known: static ones and those heard announcing themselves.
    public private(set) var table: RegistrarTable
    /// The answers, and local selection over them.
    public private(set) var cache: HandleResolutionCache
    private var association = Association.none
    /// Requests waiting for an association (in order).
    private var queued: [Request] = []
    /// Requests sent on the open association, answered in this order.
    private var sent: [Request] = []
    /// Reports to send once the association is open.
    private var reports: [ASAPMessage] = []
    /// With announces and no registrar known: until when requests wait for one.
    private var announceWaitUntil: NIODeadline?
    private var registrarIndex = 0
    private var nextRequest: UInt64 = 1
    private var nextAssociation: UInt64 = 1
    public private(set) var isShutDown = false

    public init(configuration: Configuration, table: RegistrarTable, cache: HandleResolutionCache) {
        self.configuration = configuration
        self.table = table
        self.cache = cache
    }

    /// The earliest time ``timerFired(now:)`` has something to do.
    public var nextDeadline: NIODeadline? {
        let timeouts = sent.compactMap(\.deadline)
        return (timeouts + [announceWaitUntil].compactMap { $0 }).min()
    }

    /// Requests not yet answered.
    public var outstanding: Int { queued.count + sent.count }

    // MARK: - Inputs

    /// Asks a registrar for up to `maximumCount` PEs of `handle` (nil: its default). Each
    /// registrar known is tried once at most before the request fails.
    public mutating func resolve(_ handle: PoolHandle, maximumCount: Int?, now: NIODeadline) -> (RequestID, [Action]) {
        let id = RequestID(value: nextRequest)
        nextRequest += 1
        guard !isShutDown else { return (id, [.fail(id, .shutDown)]) }
        queued.append(Request(id: id, handle: handle, maximumCount: maximumCount,
                              attemptsLeft: max(table.candidates(now: now).count, 1)))
        return (id, advance(now: now))
    }

    /// Association `id` is open. One that is no longer wanted (after a shutdown or a
    /// timeout) is closed again.
    public mutating func associationEstablished(_ id: AssociationID, now: NIODeadline) -> [Action] {
        guard case .opening(id, let address) = association else { return [.close(id)] }
        association = .open(id, address)
        return advance(now: now)
    }

    public mutating func associationFailed(_ id: AssociationID, reason: String, now: NIODeadline) -> [Action] {
        guard case .opening(id, let address) = association else { return [] }
        association = .none
        registrarIndex += 1
        return retryOrFail(.noRegistrarReachable("\(address): \(reason)"), now: now)
    }

    public mutating func associationClosed(_ id: AssociationID, now: NIODeadline) -> [Action] {
        guard association.id == id else { return [] }
        association = .none
        registrarIndex += 1
        return retryOrFail(.noRegistrarReachable("association to the registrar closed"), now: now)
    }

    /// A message from the registrar on association `id`.
    public mutating func received(_ message: ASAPMessage, on id: AssociationID, now: NIODeadline) -> [Action] {
        guard case .open(id, _) = association, case .handleResolutionResponse(let response) = message, !sent.isEmpty else { return [] }
        let request = sent.removeFirst()
        cache.store(response, now: now)
        return [.succeed(request.id, response)]
    }

    /// Timeouts: a registrar that did not answer in time loses its association and the
    /// requests go to the next one; an announce wait that ran out lets requests fail.
    public mutating func timerFired(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        if let deadline = sent.compactMap(\.deadline).min(), deadline <= now, let id = association.id {
            association = .none
            registrarIndex += 1
            actions.append(.close(id))
            actions += retryOrFail(.registrarTimeout(configuration.requestTimeout), now: now)
        }
        if let until = announceWaitUntil, until <= now {
            announceWaitUntil = nil
            actions += connectOrFail(now: now, waited: true)
        }
        return actions
    }

    /// A Server Announce heard from `source`.
    public mutating func heard(_ announce: ASAPServerAnnounce, from source: IPAddress, now: NIODeadline) -> [Action] {
        table.heard(announce, from: source, now: now)
        guard announceWaitUntil != nil else { return [] }
        announceWaitUntil = nil
        return advance(now: now)
    }

    /// Whether a fresh answer for `handle` is cached.
    public func isFresh(_ handle: PoolHandle, now: NIODeadline) -> Bool { cache.isFresh(handle, now: now) }

    /// One PE chosen locally by the pool's policy from the cached answer.
    public mutating func select(_ handle: PoolHandle) -> PoolElementParameter? { cache.select(handle).first }

    /// A PE the user could not reach: out of the cache, and reported to the registrar
    /// (Endpoint Unreachable) on the association, opened for it if need be.
    public mutating func reportUnreachable(_ handle: PoolHandle, _ identifier: PoolElementIdentifier, now: NIODeadline) -> [Action] {
        cache.remove(handle, identifier)
        guard !isShutDown else { return [] }
        reports.append(.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: handle, identifier: identifier)))
        return advance(now: now)
    }

    /// Fails what is outstanding and closes the association; later calls fail at once.
    public mutating func shutdown() -> [Action] {
        isShutDown = true
        announceWaitUntil = nil
        reports = []
        var actions: [Action] = association.id.map { [.close($0)] } ?? []
        association = .none
        actions += (sent + queued).map { .fail($0.id, .shutDown) }
        sent = []
        queued = []
        return actions
    }

    // MARK: - Transitions

    /// Moves queued work forward: sends on an open association, or opens one.
    private mutating func advance(now: NIODeadline) -> [Action] {
        switch association {
        case .open(let id, _):
            var actions = reports.map { Action.send(id, $0) }
            reports = []
            for var request in queued {
                request.deadline = now + configuration.requestTimeout
                sent.append(request)
                actions.append(.send(id, request.message))
            }
            queued = []
            return actions
        case .opening:
            return []
        case .none:
            guard !queued.isEmpty || !reports.isEmpty else { return [] }
            return connectOrFail(now: now, waited: false)
        }
    }

    /// Opens an association to the next registrar; with none known, waits for an announce
    /// (once) or fails the queued requests.
    private mutating func connectOrFail(now: NIODeadline, waited: Bool) -> [Action] {
        guard case .none = association, !queued.isEmpty || !reports.isEmpty else { return [] }
        let candidates = table.candidates(now: now)
        guard !candidates.isEmpty else {
            if configuration.listensForAnnounces, !waited {
                if announceWaitUntil == nil { announceWaitUntil = now + table.announceTimeout }
                return []
            }
            reports = []
            let detail = configuration.listensForAnnounces ? "no registrar configured or announced yet" : "no registrar configured"
            defer { queued = [] }
            return queued.map { .fail($0.id, .noRegistrarReachable(detail)) }
        }
        let id = AssociationID(value: nextAssociation)
        nextAssociation += 1
        let address = candidates[registrarIndex % candidates.count]
        association = .opening(id, address)
        return [.connect(id, address)]
    }

    /// The association is gone: every request sent or waiting goes to the next registrar
    /// while it has attempts left, and fails with `failure` otherwise.
    private mutating func retryOrFail(_ failure: Failure, now: NIODeadline) -> [Action] {
        // Reports are not retried: a registrar that is gone does not need them, and one that
        // is reached again hears from the next failure.
        reports = []
        var actions: [Action] = []
        var retry: [Request] = []
        for var request in sent + queued {
            request.deadline = nil
            request.attemptsLeft -= 1
            if request.attemptsLeft > 0 {
                retry.append(request)
            } else {
                actions.append(.fail(request.id, failure))
            }
        }
        sent = []
        queued = retry
        return actions + advance(now: now)
    }
}
