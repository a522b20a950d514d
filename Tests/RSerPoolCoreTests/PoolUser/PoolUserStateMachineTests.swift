import NIOCore
import RSerPoolCore
import RSerPoolWire
import Testing

/// The pool user's protocol logic with virtual time: requests, order of answers, timeouts,
/// registrar rotation, the wait for announces, reports and shutdown.
@Suite struct PoolUserStateMachineTests {
    typealias Machine = PoolUserStateMachine
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let first = TransportAddress.tcp(.v4(0x7F00_0001), port: 3863)
    static let second = TransportAddress.tcp(.v4(0x7F00_0001), port: 3864)
    static let handle = PoolHandle("EchoPool")

    static func machine(_ registrars: [TransportAddress] = [first, second], announces: Bool = false,
                        timeout: TimeAmount = .seconds(2)) -> Machine {
        Machine(configuration: .init(requestTimeout: timeout, listensForAnnounces: announces),
                table: RegistrarTable(static: registrars, announceTimeout: .seconds(5)),
                cache: HandleResolutionCache(staleTimeout: .seconds(1), seed: 1))
    }

    static func response(_ identifiers: [UInt32], handle: PoolHandle = handle) -> ASAPHandleResolutionResponse {
        ASAPHandleResolutionResponse(poolHandle: handle, policy: .roundRobin, elements: identifiers.map {
            PoolElementParameter(identifier: PoolElementIdentifier($0), registrationLife: 30_000,
                                 userTransport: .tcp(.v4(0x7F00_0001), port: UInt16(4000 + $0)), policy: .roundRobin)
        })
    }

    /// The association the machine asked to open in `actions`.
    static func connection(_ actions: [Machine.Action]) -> (Machine.AssociationID, TransportAddress)? {
        for case .connect(let id, let address) in actions { return (id, address) }
        return nil
    }

    static func sent(_ actions: [Machine.Action]) -> [ASAPMessage] {
        actions.compactMap { if case .send(_, let message) = $0 { message } else { nil } }
    }

    @Test func aResolutionOpensAnAssociationIsSentAndIsAnsweredInOrder() throws {
        var machine = Self.machine()
        let (a, opening) = machine.resolve(Self.handle, maximumCount: 5, now: Self.start)
        let (association, address) = try #require(Self.connection(opening))
        #expect(address == Self.first)
        let (b, whileOpening) = machine.resolve("OtherPool", maximumCount: nil, now: Self.start)
        #expect(whileOpening.isEmpty, "one association at a time")
        let open = machine.associationEstablished(association, now: Self.start)
        #expect(Self.sent(open) == [
            .handleResolution(ASAPHandleResolution(poolHandle: Self.handle, option: HandleResolutionOption(items: 5))),
            .handleResolution(ASAPHandleResolution(poolHandle: "OtherPool")),
        ])
        #expect(machine.nextDeadline == Self.start + .seconds(2))
        let answer = Self.response([1, 2])
        #expect(machine.received(.handleResolutionResponse(answer), on: association, now: Self.start) == [.succeed(a, answer)])
        let other = Self.response([], handle: "OtherPool")
        #expect(machine.received(.handleResolutionResponse(other), on: association, now: Self.start) == [.succeed(b, other)])
        #expect(machine.outstanding == 0)
        #expect(machine.nextDeadline == nil)
        #expect(machine.isFresh(Self.handle, now: Self.start + .milliseconds(999)))
        #expect(!machine.isFresh(Self.handle, now: Self.start + .seconds(1)), "stale after the cache timeout")
        #expect(machine.select(Self.handle) != nil)
    }

    @Test func aRegistrarThatDoesNotAnswerInTimeIsLeftForTheNext() throws {
        var machine = Self.machine()
        let (request, opening) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        let (firstAssociation, _) = try #require(Self.connection(opening))
        _ = machine.associationEstablished(firstAssociation, now: Self.start)
        #expect(machine.timerFired(now: Self.start + .milliseconds(1999)).isEmpty, "not yet")
        let timedOut = machine.timerFired(now: Self.start + .seconds(2))
        #expect(timedOut.first == .close(firstAssociation))
        let (secondAssociation, address) = try #require(Self.connection(timedOut))
        #expect(address == Self.second)
        // An answer on the abandoned association is ignored.
        #expect(machine.received(.handleResolutionResponse(Self.response([1])), on: firstAssociation, now: Self.start + .seconds(2)).isEmpty)
        let resent = machine.associationEstablished(secondAssociation, now: Self.start + .seconds(2))
        #expect(Self.sent(resent).count == 1)
        // The second registrar does not answer either: the request has tried both and fails.
        let failed = machine.timerFired(now: Self.start + .seconds(4))
        #expect(failed.contains(.fail(request, .registrarTimeout(.seconds(2)))))
        #expect(Self.connection(failed) == nil)
        #expect(machine.outstanding == 0)
    }

    @Test func anUnreachableRegistrarIsSkippedAndAClosedAssociationRetries() throws {
        var machine = Self.machine()
        let (request, opening) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        let (refused, _) = try #require(Self.connection(opening))
        let next = machine.associationFailed(refused, reason: "connection refused", now: Self.start)
        let (association, address) = try #require(Self.connection(next))
        #expect(address == Self.second)
        _ = machine.associationEstablished(association, now: Self.start)
        // It closes before answering: no attempts left (two registrars, two tried).
        let closed = machine.associationClosed(association, now: Self.start)
        #expect(closed == [.fail(request, .noRegistrarReachable("association to the registrar closed"))])
        // A later request starts with the registrar after the last one used.
        let (_, again) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        #expect(Self.connection(again)?.1 == Self.first)
    }

    @Test func withAnnouncesARequestWaitsForARegistrarToBeHeard() throws {
        var machine = Self.machine([], announces: true)
        let (request, waiting) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        #expect(waiting.isEmpty)
        #expect(machine.nextDeadline == Self.start + .seconds(5))
        let announce = ASAPServerAnnounce(registrar: RegistrarIdentifier(0x52), transports: [Self.second])
        let heard = machine.heard(announce, from: .v4(0x7F00_0001), now: Self.start + .seconds(1))
        #expect(Self.connection(heard)?.1 == Self.second)
        #expect(machine.nextDeadline == nil)

        var silent = Self.machine([], announces: true)
        let (unanswered, _) = silent.resolve(Self.handle, maximumCount: nil, now: Self.start)
        #expect(silent.timerFired(now: Self.start + .seconds(5)) == [.fail(unanswered, .noRegistrarReachable("no registrar configured or announced yet"))])
        _ = request
    }

    @Test func withoutRegistrarsARequestFailsAtOnce() {
        var machine = Self.machine([])
        let (request, actions) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        #expect(actions == [.fail(request, .noRegistrarReachable("no registrar configured"))])
    }

    @Test func anUnreachablePEIsDroppedFromTheCacheAndReported() throws {
        var machine = Self.machine()
        let (_, opening) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        let (association, _) = try #require(Self.connection(opening))
        _ = machine.associationEstablished(association, now: Self.start)
        _ = machine.received(.handleResolutionResponse(Self.response([1])), on: association, now: Self.start)
        let report = machine.reportUnreachable(Self.handle, PoolElementIdentifier(1), now: Self.start)
        #expect(Self.sent(report) == [.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: Self.handle, identifier: PoolElementIdentifier(1)))])
        #expect(machine.select(Self.handle) == nil, "the only PE was removed")
    }

    @Test func aReportOpensAnAssociationButIsNotRetriedWhenItFails() throws {
        var machine = Self.machine([Self.first])
        let opening = machine.reportUnreachable(Self.handle, PoolElementIdentifier(9), now: Self.start)
        let (association, _) = try #require(Self.connection(opening))
        #expect(machine.associationFailed(association, reason: "refused", now: Self.start).isEmpty, "no reconnect loop for a report")
    }

    @Test func shutdownFailsWhatIsOutstandingAndLaterRequests() throws {
        var machine = Self.machine()
        let (a, opening) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        let (association, _) = try #require(Self.connection(opening))
        _ = machine.associationEstablished(association, now: Self.start)
        let (b, _) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        let actions = machine.shutdown()
        #expect(actions.first == .close(association))
        #expect(Set(actions.dropFirst()) == [.fail(a, .shutDown), .fail(b, .shutDown)])
        let (c, after) = machine.resolve(Self.handle, maximumCount: nil, now: Self.start)
        #expect(after == [.fail(c, .shutDown)])
        // An association that opens after the shutdown is closed again.
        #expect(machine.associationEstablished(association, now: Self.start) == [.close(association)])
    }
}
