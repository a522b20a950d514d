import NIOCore
import Testing
@testable import RSerPoolCore
import RSerPoolWire

private let t0 = NIODeadline.uptimeNanoseconds(100_000_000_000)

/// Registrar state machines joined by in-memory ENRP associations. Messages are delivered
/// in order; a registrar marked down neither sends nor receives; time moves only when told.
private struct Cluster {
    var machines: [RegistrarIdentifier: RegistrarStateMachine] = [:]
    var links: [(a: RegistrarIdentifier, aSide: AssociationID, b: RegistrarIdentifier, bSide: AssociationID)] = []
    var down: Set<RegistrarIdentifier> = []
    var events: [(RegistrarIdentifier, RegistrarEvent)] = []
    var asapSent: [(RegistrarIdentifier, ASAPMessage, AssociationID)] = []
    var adoptions: [(RegistrarIdentifier, PoolHandle, PoolElementParameter)] = []
    var dropHandleUpdates = false
    /// While set, ENRP messages wait in `held` instead of being delivered.
    var holding = false
    var held: [(RegistrarIdentifier, RegistrarStateMachine.Action)] = []
    var now = t0
    private var nextAssociation: UInt64 = 1000

    init(_ ids: [UInt32], configure: (inout RegistrarConfiguration) -> Void = { _ in }) {
        for raw in ids {
            var configuration = RegistrarConfiguration(identifier: RegistrarIdentifier(raw))
            configuration.keepAliveInterval = .seconds(3600)  // no PEs answer here; ENRP is under test
            configure(&configuration)
            var machine = RegistrarStateMachine(configuration: configuration, seed: UInt64(raw))
            _ = machine.startPeering(enrpTransport: .tcp(.ipv4Loopback, port: UInt16(9900 + raw)), staticPeers: [], now: t0)
            machines[RegistrarIdentifier(raw)] = machine
        }
    }

    mutating func connect(_ a: UInt32, _ b: UInt32) {
        let (idA, idB) = (RegistrarIdentifier(a), RegistrarIdentifier(b))
        nextAssociation += 2
        let (sideA, sideB) = (AssociationID(nextAssociation), AssociationID(nextAssociation + 1))
        links.append((idA, sideA, idB, sideB))
        run(idA, machines[idA]!.peerAssociationEstablished(sideA, now: now))
        run(idB, machines[idB]!.peerAssociationEstablished(sideB, now: now))
    }

    mutating func register(_ at: UInt32, handle: PoolHandle = "Pool", pe: UInt32, association: UInt64 = 1) {
        let element = PoolElementParameter(identifier: PoolElementIdentifier(pe), registrationLife: 30_000,
                                           userTransport: .tcp(.ipv4Loopback, port: UInt16(7000 + pe)), policy: .roundRobin,
                                           asapTransport: .tcp(.ipv4Loopback, port: UInt16(17000 + pe)))
        let id = RegistrarIdentifier(at)
        run(id, machines[id]!.received(.registration(ASAPRegistration(poolHandle: handle, poolElement: element)),
                                        on: AssociationID(association), peerAddress: nil, now: now))
    }

    mutating func advance(by amount: TimeAmount, step: TimeAmount = .milliseconds(100)) {
        let end = now + amount
        while now < end {
            now = now + step
            for id in machines.keys.sorted() where !down.contains(id) {
                run(id, machines[id]!.timerFired(now: now))
            }
        }
    }

    mutating func run(_ origin: RegistrarIdentifier, _ initial: [RegistrarStateMachine.Action]) {
        var queue = initial.map { (origin, $0) }
        while !queue.isEmpty {
            let (from, action) = queue.removeFirst()
            switch action {
            case .sendENRP(_, _) where holding:
                held.append((from, action))
            case .sendENRP(let message, let association):
                guard !down.contains(from), let link = links.first(where: { ($0.a == from && $0.aSide == association) || ($0.b == from && $0.bSide == association) })
                else { continue }
                if dropHandleUpdates, case .handleUpdate = message.body { continue }
                let (to, side) = link.a == from ? (link.b, link.bSide) : (link.a, link.aSide)
                guard !down.contains(to) else { continue }
                queue += machines[to]!.receivedPeer(message, on: side, now: now).map { (to, $0) }
            case .send(let message, let association):
                asapSent.append((from, message, association))
            case .adopt(let handle, let element):
                adoptions.append((from, handle, element))
            case .event(let event):
                events.append((from, event))
            case .connectPeer, .close:
                break
            }
        }
    }

    mutating func release() {
        holding = false
        let messages = held
        held = []
        for (from, action) in messages { run(from, [action]) }
    }

    func elements(at id: UInt32, handle: PoolHandle = "Pool") -> [UInt32: RegistrarIdentifier] {
        guard let pool = machines[RegistrarIdentifier(id)]!.handlespace.pool(handle) else { return [:] }
        return Dictionary(uniqueKeysWithValues: pool.elements.map { ($0.identifier.rawValue, $0.owner) })
    }
}

@Suite("ENRP state machine")
struct ENRPStateMachineTests {
    @Test func handleUpdatesReplicateRegistrationsAndRemovals() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.register(1, pe: 10)
        #expect(c.elements(at: 2) == [10: RegistrarIdentifier(1)])
        c.run(RegistrarIdentifier(1), c.machines[RegistrarIdentifier(1)]!.received(
            .deregistration(ASAPDeregistration(poolHandle: "Pool", identifier: PoolElementIdentifier(10))), on: AssociationID(1), peerAddress: nil, now: c.now))
        #expect(c.elements(at: 2).isEmpty)
    }

    @Test func aNewRegistrarDownloadsTheHandlespaceFromItsMentor() {
        var c = Cluster([1, 2])
        for pe in UInt32(1)...300 { c.register(1, pe: pe) }  // three pages of 128
        c.connect(1, 2)
        #expect(c.elements(at: 2).count == 300)
        #expect(c.elements(at: 2).values.allSatisfy { $0 == RegistrarIdentifier(1) })
    }

    @Test func checksumMismatchTriggersResynchronisation() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.dropHandleUpdates = true
        c.register(1, pe: 10)
        c.register(1, pe: 11)
        #expect(c.elements(at: 2).isEmpty, "updates were lost")
        c.dropHandleUpdates = false
        c.advance(by: .seconds(3))  // a heartbeat carries the checksum
        #expect(c.events.contains { if case .checksumMismatch = $0.1 { true } else { false } })
        #expect(c.elements(at: 2) == [10: RegistrarIdentifier(1), 11: RegistrarIdentifier(1)])
        #expect(c.machines[RegistrarIdentifier(2)]!.handlespace.checksum(of: RegistrarIdentifier(1))
                == c.machines[RegistrarIdentifier(1)]!.handlespace.checksum(of: RegistrarIdentifier(1)))
    }

    @Test func deadRegistrarIsTakenOverByTheLowestSurvivor() {
        var c = Cluster([1, 2, 3])
        c.connect(1, 2); c.connect(1, 3); c.connect(2, 3)
        c.register(3, pe: 30)
        c.register(3, pe: 31)
        #expect(c.elements(at: 1).count == 2 && c.elements(at: 2).count == 2)
        c.down.insert(RegistrarIdentifier(3))
        c.advance(by: .seconds(9))
        #expect(c.elements(at: 1).values.allSatisfy { $0 == RegistrarIdentifier(3) }, "not before silence + no response (10 s)")
        c.advance(by: .seconds(8))
        // Both survivors started a takeover; the lower identifier (1) wins the tie.
        #expect(c.elements(at: 1) == [30: RegistrarIdentifier(1), 31: RegistrarIdentifier(1)])
        #expect(c.elements(at: 2) == [30: RegistrarIdentifier(1), 31: RegistrarIdentifier(1)])
        #expect(c.adoptions.map(\.0) == [RegistrarIdentifier(1), RegistrarIdentifier(1)])
        #expect(c.events.contains { if case .takeoverCompleted(let t, 2) = $0.1 { $0.0 == RegistrarIdentifier(1) && t == RegistrarIdentifier(3) } else { false } })
        #expect(!c.events.contains { if case .takeoverCompleted = $0.1 { $0.0 == RegistrarIdentifier(2) } else { false } })
    }

    @Test func adoptionSendsTheHomeFlagAndTheAckMakesItMonitored() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.register(2, pe: 20)
        c.down.insert(RegistrarIdentifier(2))
        c.advance(by: .seconds(16))
        guard let (_, handle, element) = c.adoptions.first else { Issue.record("no adoption"); return }
        #expect(element.asapTransport == .tcp(.ipv4Loopback, port: 17020))
        let one = RegistrarIdentifier(1)
        c.run(one, c.machines[one]!.adoptionAssociationEstablished(AssociationID(77), handle: handle, identifier: element.identifier, now: c.now))
        guard case .endpointKeepAlive(let keepAlive)? = c.asapSent.last?.1 else { Issue.record("no keep-alive"); return }
        #expect(keepAlive.isHome && keepAlive.registrar == one)
        var unanswered = c
        c.run(one, c.machines[one]!.received(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: handle, identifier: element.identifier)),
                                              on: AssociationID(77), peerAddress: nil, now: c.now))
        // (within its 30 s registration life, which no real PE renews here)
        c.advance(by: .seconds(10))
        #expect(c.elements(at: 1) == [20: one], "acknowledged: it stays, owned by 1")
        unanswered.advance(by: .seconds(10))
        #expect(unanswered.elements(at: 1).isEmpty, "without the ack it is dropped: it is monitored")
        #expect(unanswered.events.contains { if case .removed(_, _, .keepAliveTimeout) = $0.1 { true } else { false } })
    }

    @Test func aPeerThatAnswersInTimeIsNotTakenOver() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.register(2, pe: 20)
        c.down.insert(RegistrarIdentifier(2))
        c.advance(by: .seconds(7))  // silent: asked for a reply
        #expect(c.events.contains { if case .peerSilent(let p) = $0.1 { p == RegistrarIdentifier(2) } else { false } })
        c.down.remove(RegistrarIdentifier(2))
        c.advance(by: .seconds(15))
        #expect(!c.events.contains { if case .takeoverStarted = $0.1 { true } else { false } })
        #expect(c.elements(at: 1) == [20: RegistrarIdentifier(2)])
    }

    @Test func theTargetCancelsATakeoverByPresence() {
        var c = Cluster([1, 2, 3])
        c.connect(1, 2); c.connect(1, 3); c.connect(2, 3)
        c.register(3, pe: 30)
        // 3 is cut off from 1 only: 1 starts a takeover, 2 forwards nothing, but 3 itself
        // answers the Init Takeover with a Presence, which cancels it.
        let one = RegistrarIdentifier(1), three = RegistrarIdentifier(3)
        var m = c.machines[one]!
        let actions = m.receivedPeer(ENRPMessage(sender: three, receiver: one, .presence(checksum: 0, server: ServerInformation(identifier: three, transport: .tcp(.ipv4Loopback, port: 9903)), replyRequired: false)), on: AssociationID(555), now: c.now)
        c.machines[one] = m
        c.run(one, actions)
        var machine3 = c.machines[three]!
        let reply = machine3.receivedPeer(ENRPMessage(sender: one, receiver: three, .initTakeover(target: three)), on: c.links[1].bSide, now: c.now)
        #expect(reply.contains { if case .sendENRP(let message, _) = $0, case .presence = message.body { true } else { false } })
    }

    @Test func tieBreakLowerIdentifierWins() {
        // 9 dies; 2 and 5 both start taking it over and hear each other's Init Takeover.
        var c = Cluster([2, 5, 9])
        c.connect(2, 5); c.connect(2, 9); c.connect(5, 9)
        c.register(9, pe: 90)
        c.down.insert(RegistrarIdentifier(9))
        c.advance(by: .seconds(9))
        #expect(!c.events.contains { if case .takeoverStarted = $0.1 { true } else { false } })
        c.holding = true             // both start before either hears the other
        c.advance(by: .seconds(3))
        #expect(c.events.filter { if case .takeoverStarted = $0.1 { true } else { false } }.count == 2)
        c.release()
        c.advance(by: .seconds(1))
        let cancelled = c.events.filter { if case .takeoverCancelled = $0.1 { true } else { false } }.map(\.0)
        #expect(cancelled.contains(RegistrarIdentifier(5)), "the higher identifier gives way")
        #expect(c.events.contains { if case .takeoverCompleted = $0.1 { $0.0 == RegistrarIdentifier(2) } else { false } })
        #expect(!c.events.contains { if case .takeoverCompleted = $0.1 { $0.0 == RegistrarIdentifier(5) } else { false } })
        #expect(c.elements(at: 5) == [90: RegistrarIdentifier(2)])
    }

    @Test func learnedPoolElementsExpireWithoutRefresh() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.register(1, pe: 10)
        c.dropHandleUpdates = true  // no refreshes, and 1 keeps its PE (its keep-alives are not answered here, so stop 1's timers)
        var two = c.machines[RegistrarIdentifier(2)]!
        let later = c.now + .seconds(31)
        let actions = two.timerFired(now: later)
        c.machines[RegistrarIdentifier(2)] = two
        #expect(actions.contains { if case .event(.removed(_, _, .registrationLifeExpired)) = $0 { true } else { false } })
    }

    @Test func endlessHandleTableIsAbandoned() {
        var configuration = RegistrarConfiguration(identifier: RegistrarIdentifier(1))
        configuration.maximumPoolElements = 256  // → at most 4 pages
        var machine = RegistrarStateMachine(configuration: configuration, seed: 1)
        let peer = RegistrarIdentifier(2), association = AssociationID(5)
        _ = machine.peerAssociationEstablished(association, now: t0)
        var actions = machine.receivedPeer(ENRPMessage(sender: peer, receiver: .unknown, .presence(checksum: 0xFFFF, server: ServerInformation(identifier: peer, transport: .tcp(.ipv4Loopback, port: 9902)), replyRequired: false)), on: association, now: t0)
        var requests = 0
        for _ in 0..<20 {
            requests += actions.filter { if case .sendENRP(let m, _) = $0, case .handleTableRequest = m.body { true } else { false } }.count
            if actions.contains(where: { if case .event(.handleTableAbandoned) = $0 { true } else { false } }) { break }
            actions = machine.receivedPeer(ENRPMessage(sender: peer, receiver: RegistrarIdentifier(1), .handleTableResponse(entries: [], moreToSend: true, rejected: false)),
                                           on: association, now: t0)
        }
        #expect(actions.contains { if case .event(.handleTableAbandoned) = $0 { true } else { false } })
        #expect(requests <= configuration.maximumHandleTablePages)
    }

    @Test func closedScopeRefusesStrangers() {
        var configuration = RegistrarConfiguration(identifier: RegistrarIdentifier(1))
        configuration.allowedPeers = [RegistrarIdentifier(2)]
        var machine = RegistrarStateMachine(configuration: configuration, seed: 1)
        let actions = machine.receivedPeer(ENRPMessage(sender: RegistrarIdentifier(66), receiver: .unknown, .listRequest), on: AssociationID(9), now: t0)
        #expect(actions.contains { if case .close = $0 { true } else { false } })
        #expect(actions.contains { if case .event(.peerRefused) = $0 { true } else { false } })
    }

    @Test func aRegistrarNeverLetsAPeerOverwriteItsOwnMonitoredPE() {
        var c = Cluster([1, 2])
        c.connect(1, 2)
        c.register(1, pe: 10)
        let forged = PoolElementParameter(identifier: PoolElementIdentifier(10), homeRegistrar: RegistrarIdentifier(2), registrationLife: 1,
                                          userTransport: .tcp(.ipv4Loopback, port: 1), policy: .roundRobin)
        let one = RegistrarIdentifier(1)
        c.run(one, c.machines[one]!.receivedPeer(ENRPMessage(sender: RegistrarIdentifier(2), receiver: one,
            .handleUpdate(action: .deletePoolElement, poolHandle: "Pool", element: forged, takeoverSuggested: false)), on: c.links[0].aSide, now: c.now))
        #expect(c.elements(at: 1) == [10: one])
    }

    @Test func aForgedTakeoverOfALivePeerIsRefused() {
        var c = Cluster([1, 2, 3])
        c.connect(1, 2); c.connect(1, 3); c.connect(2, 3)
        c.register(3, pe: 30)
        let one = RegistrarIdentifier(1), two = RegistrarIdentifier(2), three = RegistrarIdentifier(3)
        c.advance(by: .seconds(1))  // 1 hears 3's heartbeats
        // 2 claims 3 is dead: 1 does not acknowledge, and does not hand 3's PEs to 2.
        let fromTwo = c.links[0].aSide
        let ack = c.machines[one]!.receivedPeer(ENRPMessage(sender: two, receiver: one, .initTakeover(target: three)), on: fromTwo, now: c.now)
        #expect(!ack.contains { if case .sendENRP(let m, _) = $0, case .initTakeoverAck = m.body { true } else { false } })
        #expect(ack.contains { if case .event(.peerRefused) = $0 { true } else { false } })
        c.run(one, c.machines[one]!.receivedPeer(ENRPMessage(sender: two, receiver: one, .takeoverServer(target: three)), on: fromTwo, now: c.now))
        #expect(c.elements(at: 1) == [30: three], "3 is alive: its PE stays its own")
    }
}
