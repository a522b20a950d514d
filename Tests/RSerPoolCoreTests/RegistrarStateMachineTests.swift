import NIOCore
import Testing
@testable import RSerPoolCore
import RSerPoolWire

private let t0 = NIODeadline.uptimeNanoseconds(10_000_000_000)
private let pr = RegistrarIdentifier(0x1000)

private func element(_ id: UInt32, policy: PoolPolicy = .roundRobin, port: UInt16 = 7000, address: IPAddress = .ipv4Loopback) -> PoolElementParameter {
    PoolElementParameter(identifier: PoolElementIdentifier(id), registrationLife: 90_000,
                         userTransport: .tcp(address, port: port), policy: policy)
}

private func registration(_ e: PoolElementParameter, handle: PoolHandle = "Pool") -> ASAPMessage {
    .registration(ASAPRegistration(poolHandle: handle, poolElement: e))
}

private func sent(_ actions: [RegistrarStateMachine.Action]) -> [(ASAPMessage, AssociationID)] {
    actions.compactMap { if case .send(let m, let a) = $0 { (m, a) } else { nil } }
}

private func removals(_ actions: [RegistrarStateMachine.Action]) -> [RegistrarEvent.RemovalReason] {
    actions.compactMap { if case .event(.removed(_, _, let reason)) = $0 { reason } else { nil } }
}

private func rejection(_ actions: [RegistrarStateMachine.Action]) -> ErrorCauseCode? {
    for (message, _) in sent(actions) {
        if case .registrationResponse(let r) = message, r.rejected { return r.error?.code }
    }
    return nil
}

@Suite("Registrar state machine")
struct RegistrarStateMachineTests {
    var machine = RegistrarStateMachine(configuration: RegistrarConfiguration(identifier: pr), seed: 1)
    let a1 = AssociationID(1), a2 = AssociationID(2)

    @Test mutating func registrationIsAcceptedAndResolvable() {
        let actions = machine.received(registration(element(1)), on: a1, peerAddress: .ipv4Loopback, now: t0)
        guard case .registrationResponse(let response)? = sent(actions).first?.0 else { Issue.record("no response"); return }
        #expect(!response.rejected && response.identifier == PoolElementIdentifier(1))
        let resolution = machine.received(.handleResolution(ASAPHandleResolution(poolHandle: "Pool")), on: a2, peerAddress: nil, now: t0)
        guard case .handleResolutionResponse(let r)? = sent(resolution).first?.0 else { Issue.record("no response"); return }
        #expect(r.elements.map(\.identifier) == [PoolElementIdentifier(1)])
        #expect(r.elements.first?.homeRegistrar == pr, "the registrar stamps itself as home PR")
    }

    @Test mutating func unspecifiedAddressIsFilledFromTheAssociation() {
        let peer = IPAddress("192.0.2.7")!
        _ = machine.received(registration(element(1, address: .ipv4Any)), on: a1, peerAddress: peer, now: t0)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(1))?.parameter.userTransport.addresses == [peer])
    }

    @Test mutating func reRegistrationUpdatesLoad() {
        _ = machine.received(registration(element(1, policy: .leastUsed(load: 5))), on: a1, peerAddress: nil, now: t0)
        let actions = machine.received(registration(element(1, policy: .leastUsed(load: 9))), on: a1, peerAddress: nil, now: t0)
        #expect(rejection(actions) == nil)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(1))?.parameter.policy.load == 9)
        #expect(machine.handlespace.elementCount == 1)
    }

    @Test mutating func sameIdentifierFromAnotherPEIsRejected() {
        _ = machine.received(registration(element(1, port: 7000)), on: a1, peerAddress: nil, now: t0)
        #expect(rejection(machine.received(registration(element(1, port: 7001)), on: a2, peerAddress: nil, now: t0)) == .nonUniquePoolElementIdentifier)
        // Not even with the same transport: a PE belongs to the association that registered it.
        #expect(rejection(machine.received(registration(element(1, port: 7000)), on: a2, peerAddress: nil, now: t0)) == .nonUniquePoolElementIdentifier)
        #expect(machine.registrationCount(on: a1) == 1 && machine.registrationCount(on: a2) == 0)
        // Nor deregister it.
        let deregistration = ASAPMessage.deregistration(ASAPDeregistration(poolHandle: "Pool", identifier: PoolElementIdentifier(1)))
        _ = machine.received(deregistration, on: a2, peerAddress: nil, now: t0)
        #expect(machine.handlespace.elementCount == 1)
        // Once its association is gone, the identifier is free again.
        _ = machine.associationClosed(a1)
        #expect(rejection(machine.received(registration(element(1, port: 7000)), on: a2, peerAddress: nil, now: t0)) == nil)
        #expect(machine.registrationCount(on: a2) == 1)
    }

    @Test mutating func aPERegistersOnlyItsOwnAddress() {
        let own = IPAddress("192.0.2.7")!
        for foreign in ["10.1.2.3", "169.254.169.254", "192.0.2.8", "::1"] {
            let actions = machine.received(registration(element(1, address: IPAddress(foreign)!)), on: a1, peerAddress: own, now: t0)
            #expect(rejection(actions) == .rejectedDueToSecurity, "\(foreign)")
        }
        var e = element(2, address: own)
        e.asapTransport = .tcp(IPAddress("10.9.9.9")!, port: 3863, transportUse: .dataPlusControl)
        #expect(rejection(machine.received(registration(e), on: a1, peerAddress: own, now: t0)) == .rejectedDueToSecurity,
                "the ASAP transport (where a registrar connects on takeover) too")
        #expect(machine.handlespace.elementCount == 0)
        #expect(rejection(machine.received(registration(element(3, address: own)), on: a1, peerAddress: own, now: t0)) == nil)
        #expect(rejection(machine.received(registration(element(4, address: IPAddress("::ffff:192.0.2.7")!)), on: a1, peerAddress: own, now: t0)) == nil)
        #expect(rejection(machine.received(registration(element(5, address: .ipv4Any)), on: a1, peerAddress: own, now: t0)) == nil)
        // A registrar configured for proxy PEs accepts other addresses.
        var config = RegistrarConfiguration(identifier: pr)
        config.acceptsForeignAddresses = true
        var proxying = RegistrarStateMachine(configuration: config, seed: 1)
        #expect(rejection(proxying.received(registration(element(1, address: IPAddress("10.1.2.3")!)), on: a1, peerAddress: own, now: t0)) == nil)
    }

    @Test mutating func inconsistentPolicyIsRejectedWithCause5() {
        _ = machine.received(registration(element(1, policy: .roundRobin)), on: a1, peerAddress: nil, now: t0)
        #expect(rejection(machine.received(registration(element(2, policy: .leastUsed(load: 0))), on: a1, peerAddress: nil, now: t0)) == .inconsistentPoolingPolicy)
    }

    @Test mutating func unsupportedPolicyAndBadValuesAreRejected() {
        #expect(rejection(machine.received(registration(element(1, policy: PoolPolicy(type: PolicyType(0x77)))), on: a1, peerAddress: nil, now: t0)) == .invalidValues)
        #expect(rejection(machine.received(registration(element(2, port: 0)), on: a1, peerAddress: nil, now: t0)) == .invalidValues)
    }

    @Test mutating func unknownPoolResolvesToOperationError() {
        let actions = machine.received(.handleResolution(ASAPHandleResolution(poolHandle: "nope")), on: a1, peerAddress: nil, now: t0)
        guard case .handleResolutionResponse(let r)? = sent(actions).first?.0 else { Issue.record("no response"); return }
        #expect(r.error?.code == .unknownPoolHandle && r.elements.isEmpty)
    }

    @Test mutating func resolutionHonoursTheOption() {
        for id in UInt32(1)...10 { _ = machine.received(registration(element(id, port: UInt16(7000 + id))), on: a1, peerAddress: nil, now: t0) }
        let three = machine.received(.handleResolution(ASAPHandleResolution(poolHandle: "Pool")), on: a2, peerAddress: nil, now: t0)
        let all = machine.received(.handleResolution(ASAPHandleResolution(poolHandle: "Pool", option: .all)), on: a2, peerAddress: nil, now: t0)
        guard case .handleResolutionResponse(let r3)? = sent(three).first?.0, case .handleResolutionResponse(let rAll)? = sent(all).first?.0 else {
            Issue.record("no responses"); return
        }
        #expect(r3.elements.count == 3)
        #expect(rAll.elements.count == 10)
    }

    @Test mutating func keepAliveUnansweredRemovesThePE() {
        _ = machine.received(registration(element(1)), on: a1, peerAddress: nil, now: t0)
        #expect(machine.timerFired(now: t0 + .seconds(4)).isEmpty)
        let keepAlive = machine.timerFired(now: t0 + .seconds(5))
        guard case .endpointKeepAlive(let ka)? = sent(keepAlive).first?.0 else { Issue.record("no keep-alive"); return }
        #expect(ka.registrar == pr && ka.identifier == PoolElementIdentifier(1) && !ka.isHome)
        #expect(removals(machine.timerFired(now: t0 + .seconds(10))) == [.keepAliveTimeout])
        #expect(machine.handlespace.elementCount == 0)
    }

    @Test mutating func keepAliveAnsweredKeepsThePE() {
        _ = machine.received(registration(element(1)), on: a1, peerAddress: nil, now: t0)
        for round in 0..<5 {
            let base = t0 + .seconds(Int64(5 * round))
            let ka = machine.timerFired(now: base + .seconds(5))
            #expect(sent(ka).count == 1)
            _ = machine.received(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "Pool", identifier: PoolElementIdentifier(1))),
                                 on: a1, peerAddress: nil, now: base + .seconds(5))
        }
        #expect(machine.handlespace.elementCount == 1)
    }

    @Test mutating func registrationLifeExpires() {
        var config = RegistrarConfiguration(identifier: pr)
        config.keepAliveInterval = .seconds(3600)
        var m = RegistrarStateMachine(configuration: config, seed: 1)
        var e = element(1)
        e.registrationLife = 2_000
        _ = m.received(registration(e), on: a1, peerAddress: nil, now: t0)
        #expect(removals(m.timerFired(now: t0 + .milliseconds(1999))).isEmpty)
        #expect(removals(m.timerFired(now: t0 + .seconds(2))) == [.registrationLifeExpired])
    }

    @Test mutating func unreachableReportsFromThreeAssociationsProbeThePE() {
        _ = machine.received(registration(element(1)), on: a1, peerAddress: nil, now: t0)
        let report = ASAPMessage.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: "Pool", identifier: PoolElementIdentifier(1)))
        // One association's reports count once, however many it sends.
        for _ in 0..<10 { #expect(removals(machine.received(report, on: a2, peerAddress: nil, now: t0)).isEmpty) }
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(1))?.unreachableReports == 1)
        _ = machine.received(report, on: AssociationID(3), peerAddress: nil, now: t0)
        // The third reporter: the PE is asked, not dropped.
        let third = machine.received(report, on: AssociationID(4), peerAddress: nil, now: t0)
        #expect(removals(third).isEmpty)
        guard case (.endpointKeepAlive(let probe), let to)? = sent(third).first else { Issue.record("no probe"); return }
        #expect(probe.identifier == PoolElementIdentifier(1) && to == a1)
        #expect(third.contains { if case .event(.unreachableProbe) = $0 { true } else { false } })
        // It answers: it stays, and the reports start over.
        _ = machine.received(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "Pool", identifier: PoolElementIdentifier(1))),
                             on: a1, peerAddress: nil, now: t0 + .seconds(1))
        #expect(removals(machine.timerFired(now: t0 + .seconds(6))).isEmpty)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(1))?.unreachableReports == 0)
        // Reported again and silent this time: dropped when the probe times out.
        for association in [a2, AssociationID(3), AssociationID(4)] { _ = machine.received(report, on: association, peerAddress: nil, now: t0 + .seconds(7)) }
        #expect(removals(machine.timerFired(now: t0 + .seconds(12))) == [.unreachable])
    }

    @Test mutating func unreachableReportsAreRateLimitedPerAssociation() {
        for id in UInt32(1)...100 { _ = machine.received(registration(element(id, port: UInt16(7000 + id))), on: a1, peerAddress: nil, now: t0) }
        var ignored = 0
        for id in UInt32(1)...100 {
            let report = ASAPMessage.endpointUnreachable(ASAPEndpointUnreachable(poolHandle: "Pool", identifier: PoolElementIdentifier(id)))
            let actions = machine.received(report, on: a2, peerAddress: nil, now: t0)
            if actions.contains(where: { if case .event(.unreachableReportIgnored(_, _, _, "rate limit")) = $0 { true } else { false } }) { ignored += 1 }
        }
        #expect(ignored == 80, "burst of 20 at 10/s")
        let counted = machine.handlespace.pools["Pool"]!.elements.filter { $0.unreachableReports > 0 }.count
        #expect(counted == 20)
    }

    @Test mutating func closedAssociationRemovesItsPEs() {
        _ = machine.received(registration(element(1)), on: a1, peerAddress: nil, now: t0)
        _ = machine.received(registration(element(2, port: 7002)), on: a2, peerAddress: nil, now: t0)
        #expect(removals(machine.associationClosed(a1)) == [.associationClosed])
        #expect(machine.handlespace.elementCount == 1)
    }

    @Test mutating func deregistrationOnlyFromTheOwningAssociation() {
        _ = machine.received(registration(element(1)), on: a1, peerAddress: nil, now: t0)
        let request = ASAPMessage.deregistration(ASAPDeregistration(poolHandle: "Pool", identifier: PoolElementIdentifier(1)))
        guard case .deregistrationResponse(let foreign)? = sent(machine.received(request, on: a2, peerAddress: nil, now: t0)).first?.0 else {
            Issue.record("no response"); return
        }
        #expect(foreign.error?.code == .rejectedDueToSecurity)
        guard case .deregistrationResponse(let own)? = sent(machine.received(request, on: a1, peerAddress: nil, now: t0)).first?.0 else {
            Issue.record("no response"); return
        }
        #expect(own.error == nil && machine.handlespace.elementCount == 0)
    }

    @Test mutating func floodFromOneAssociationIsBounded() {
        var config = RegistrarConfiguration(identifier: pr)
        config.maximumPoolElementsPerAssociation = 5
        var m = RegistrarStateMachine(configuration: config, seed: 1)
        var causes: [ErrorCauseCode?] = []
        for id in UInt32(1)...8 { causes.append(rejection(m.received(registration(element(id, port: UInt16(7000 + id))), on: a1, peerAddress: nil, now: t0))) }
        #expect(causes.prefix(5).allSatisfy { $0 == nil })
        #expect(causes.suffix(3).allSatisfy { $0 == .lackOfResources })
        #expect(m.handlespace.elementCount == 5)
    }

    @Test mutating func unexpectedMessageGetsAsapError() {
        let actions = machine.received(.cookie(ASAPCookie(ByteBuffer(bytes: [1]))), on: a1, peerAddress: nil, now: t0)
        guard case .error(let e)? = sent(actions).first?.0 else { Issue.record("no ASAP Error"); return }
        #expect(e.error.code == .unrecognizedMessage)
    }
}

@Suite("Pool element state machine")
struct PoolElementStateMachineTests {
    @Test func fullLifecycle() {
        var reg = PoolElementRegistration(poolHandle: "Pool", identifier: PoolElementIdentifier(5), userTransport: .tcp(.ipv4Loopback, port: 7),
                                          policy: .leastUsed(load: 0))
        reg.reregistrationInterval = .seconds(30)
        var pe = PoolElementStateMachine(registration: reg)
        #expect(pe.start() == [.connect])
        guard case .send(.registration(let r))? = pe.associationEstablished(now: t0).first else { Issue.record("no registration"); return }
        #expect(r.poolElement.identifier == PoolElementIdentifier(5) && r.poolElement.registrationLife == 90_000)
        #expect(pe.received(.registrationResponse(ASAPRegistrationResponse(poolHandle: "Pool", identifier: PoolElementIdentifier(5))), now: t0) == [.event(.registered)])
        #expect(pe.isRegistered)
        let keepAlive = ASAPMessage.endpointKeepAlive(ASAPEndpointKeepAlive(registrar: pr, poolHandle: "Pool", identifier: PoolElementIdentifier(5)))
        #expect(pe.received(keepAlive, now: t0).first == .send(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "Pool", identifier: PoolElementIdentifier(5)))))
        #expect(pe.homeRegistrar == pr)
        #expect(pe.timerFired(now: t0 + .seconds(29)).isEmpty)
        guard case .send(.registration)? = pe.timerFired(now: t0 + .seconds(30)).first else { Issue.record("no re-registration"); return }
        _ = pe.received(.registrationResponse(ASAPRegistrationResponse(poolHandle: "Pool", identifier: PoolElementIdentifier(5))), now: t0 + .seconds(30))
        guard case .send(.registration(let updated))? = pe.policyChanged(.leastUsed(load: 77), now: t0 + .seconds(31)).first else {
            Issue.record("no update"); return
        }
        #expect(updated.poolElement.policy.load == 77)
        _ = pe.received(.registrationResponse(ASAPRegistrationResponse(poolHandle: "Pool", identifier: PoolElementIdentifier(5))), now: t0 + .seconds(31))
        guard case .send(.deregistration)? = pe.stop(now: t0 + .seconds(32)).first else { Issue.record("no deregistration"); return }
        let done = pe.received(.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: "Pool", identifier: PoolElementIdentifier(5))), now: t0 + .seconds(32))
        #expect(done.contains(.event(.stopped)) && pe.isStopped)
    }

    @Test func lostRegistrarReconnects() {
        var pe = PoolElementStateMachine(registration: PoolElementRegistration(poolHandle: "Pool", userTransport: .tcp(.ipv4Loopback, port: 7), policy: .roundRobin))
        _ = pe.start()
        _ = pe.associationEstablished(now: t0)
        #expect(pe.associationClosed(now: t0) == [])
        #expect(pe.timerFired(now: t0 + .milliseconds(500)) == [.connect])
    }

    @Test func responseTimeoutMovesOn() {
        var pe = PoolElementStateMachine(registration: PoolElementRegistration(poolHandle: "Pool", userTransport: .tcp(.ipv4Loopback, port: 7), policy: .roundRobin))
        _ = pe.start()
        _ = pe.associationEstablished(now: t0)
        #expect(pe.timerFired(now: t0 + .seconds(5)) == [.closeAssociation, .event(.responseTimeout)])
    }

    @Test func rejectionIsReported() {
        var pe = PoolElementStateMachine(registration: PoolElementRegistration(poolHandle: "Pool", identifier: PoolElementIdentifier(1), userTransport: .tcp(.ipv4Loopback, port: 7), policy: .roundRobin))
        _ = pe.start()
        _ = pe.associationEstablished(now: t0)
        let actions = pe.received(.registrationResponse(ASAPRegistrationResponse(poolHandle: "Pool", identifier: PoolElementIdentifier(1), rejected: true,
                                                                               error: OperationError(.inconsistentPoolingPolicy))), now: t0)
        #expect(actions == [.closeAssociation, .event(.registrationRejected(OperationError(.inconsistentPoolingPolicy)))])
    }
}

@Suite("Pool user cache")
struct HandleResolutionCacheTests {
    @Test func cachesSelectsLocallyAndForgetsUnreachable() {
        var cache = HandleResolutionCache(staleTimeout: .seconds(1), seed: 1)
        let response = ASAPHandleResolutionResponse(poolHandle: "Pool", policy: .roundRobin,
                                                    elements: [element(1), element(2, port: 7002)])
        #expect(cache.store(response, now: t0) == 2)
        #expect(cache.isFresh("Pool", now: t0 + .milliseconds(999)))
        #expect(!cache.isFresh("Pool", now: t0 + .seconds(1)))
        #expect(cache.select("Pool").map(\.identifier) == [PoolElementIdentifier(1)])
        #expect(cache.select("Pool").map(\.identifier) == [PoolElementIdentifier(2)])
        cache.remove("Pool", PoolElementIdentifier(1))
        #expect(cache.select("Pool", count: 2).map(\.identifier) == [PoolElementIdentifier(2)])
    }

    @Test func errorResponseEmptiesTheCache() {
        var cache = HandleResolutionCache()
        #expect(cache.store(ASAPHandleResolutionResponse(poolHandle: "Pool", error: OperationError(.unknownPoolHandle)), now: t0) == 0)
        #expect(!cache.isFresh("Pool", now: t0))
    }
}
