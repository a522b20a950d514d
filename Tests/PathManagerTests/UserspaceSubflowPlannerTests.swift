import PathManager
import RSerPoolWire
import Testing

/// The userspace PM's subflow decisions from literal events (addresses as the testbed's
/// two-ISP topology has them).
@Suite struct UserspaceSubflowPlannerTests {
    static let wan1 = PathIdentifier("wan1"), wan2 = PathIdentifier("wan2")
    static let client1 = IPAddress.v4(0x0A51_0101), client2 = IPAddress.v4(0x0A52_0101)   // 10.81.1.1, 10.82.1.1
    static let server1 = IPAddress.v4(0x0A51_0201), server2 = IPAddress.v4(0x0A52_0201)   // 10.81.2.1, 10.82.2.1
    static let token: UInt32 = 0x4BC5_4D74

    static func planner() -> UserspaceSubflowPlanner {
        var planner = UserspaceSubflowPlanner(paths: [.init(identifier: wan1, address: client1, localID: 1), .init(identifier: wan2, address: client2, localID: 2)])
        _ = planner.setInUse(wan1, true)
        _ = planner.setInUse(wan2, true)
        return planner
    }

    static func event(_ kind: MPTCPEvent.Kind, from source: IPAddress? = nil, _ sourcePort: UInt16? = nil, to destination: IPAddress, _ destinationPort: UInt16) -> MPTCPEvent {
        var event = MPTCPEvent(kind: kind, token: token)
        event.source = source
        event.sourcePort = sourcePort
        event.destination = destination
        event.destinationPort = destinationPort
        return event
    }

    @Test func anEstablishedConnectionGetsASubflowFromEveryOtherPathAndAnAnnouncedAddressFromEveryPath() {
        var planner = Self.planner()
        #expect(planner.received(Self.event(.created, from: Self.client1, 60688, to: Self.server1, 5201)).isEmpty)
        #expect(planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201)) == [
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
        ], "wan1 already has the first subflow; wan2 gets one to the first address")
        let announced = planner.received(Self.event(.announced, to: Self.server2, 5999))
        #expect(announced == [
            .create(token: Self.token, local: Self.client1, localID: 0, remote: .init(address: Self.server2, port: 5999), backup: false),
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server2, port: 5999), backup: false),
        ], "the first subflow's address keeps id 0")
        #expect(planner.received(Self.event(.announced, to: Self.server2, 5999)).isEmpty, "announced once is enough")
    }

    @Test func aLostPathsSubflowsGoThePeerIsToldAndTheReturnedPathGetsFreshOnes() {
        var planner = Self.planner()
        _ = planner.received(Self.event(.created, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.announced, to: Self.server2, 5999))
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 40777, to: Self.server2, 5999))
        #expect(planner.subflows(of: Self.token).count == 2)
        let stuck = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40777, remote: Self.server2, remotePort: 5999)
        #expect(planner.setInUse(Self.wan2, false) == [.removeAddress(token: Self.token, localID: 2), .destroy(token: Self.token, stuck)],
                "the peer hears of it over the subflow that works (RM_ADDR: a reset sent into a dead path is lost), then the subflow goes")
        #expect(planner.subflows(of: Self.token).count == 1)
        #expect(planner.setInUse(Self.wan2, false).isEmpty, "already out of use")
        #expect(planner.setInUse(Self.wan2, true) == [
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server2, port: 5999), backup: false),
        ], "fresh subflows to every address of the peer")
        // A subflow of the path that shows up while it is out of use (an event late) is kept
        // until a fresh one from the path is established (make before break).
        _ = planner.setInUse(Self.wan2, false)
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 40888, to: Self.server2, 5999))
        let late = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40888, remote: Self.server2, remotePort: 5999)
        #expect(planner.setInUse(Self.wan2, true) == [
            .setBackup(token: Self.token, late, false),
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server2, port: 5999), backup: false),
        ])
        #expect(planner.received(Self.event(.subflowEstablished, from: Self.client2, 41000, to: Self.server2, 5999)) == [.destroy(token: Self.token, late)])
        _ = planner.received(Self.event(.subflowClosed, from: Self.client2, 40888, to: Self.server2, 5999))
        // A path in use that has a subflow to an address gets no second one from an announce.
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 42219, to: Self.server2, 5999))
        #expect(planner.received(Self.event(.announced, to: Self.server2, 5999)).isEmpty)
        #expect(planner.subflows(of: Self.token).count == 3, "the first, and wan2's two fresh ones")
    }

    @Test func pathsOutOfUseAndClosedConnectionsGetNothing() {
        var planner = UserspaceSubflowPlanner(paths: [.init(identifier: Self.wan1, address: Self.client1, localID: 1),
                                                      .init(identifier: Self.wan2, address: Self.client2, localID: 2)])
        _ = planner.setInUse(Self.wan1, true)
        _ = planner.received(Self.event(.created, from: Self.client1, 1, to: Self.server1, 5201))
        #expect(planner.received(Self.event(.established, from: Self.client1, 1, to: Self.server1, 5201)).isEmpty, "wan2 is not in use")
        _ = planner.received(MPTCPEvent(kind: .closed, token: Self.token))
        #expect(planner.connectionCount == 0)
        #expect(planner.setInUse(Self.wan2, true).isEmpty)
    }

    static func withBackup() -> UserspaceSubflowPlanner {
        var planner = UserspaceSubflowPlanner(paths: [.init(identifier: wan1, address: client1, localID: 1),
                                                      .init(identifier: wan2, address: client2, localID: 2, backup: true)])
        _ = planner.setInUse(wan1, true)
        _ = planner.setInUse(wan2, true)
        _ = planner.received(event(.created, from: client1, 60688, to: server1, 5201))
        return planner
    }

    @Test func aBackupPathsSubflowsAreCreatedAsBackup() {
        var planner = Self.withBackup()
        #expect(planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201)) == [
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: true),
        ])
    }

    @Test func backupsStandInWhileNoActivePathWorksAndStandByAgainWhenOneReturns() {
        var planner = Self.withBackup()
        _ = planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 40777, to: Self.server1, 5201))
        let first = UserspaceSubflowPlanner.Subflow(local: Self.client1, localPort: 60688, remote: Self.server1, remotePort: 5201)
        let standby = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40777, remote: Self.server1, remotePort: 5201)

        #expect(planner.setInUse(Self.wan1, false) == [
            .setBackup(token: Self.token, first, true),
            .setBackup(token: Self.token, standby, false),
        ], "the only active path is gone: the first subflow is marked backup but kept (a join may not replace it), the backup's steps in (MP_PRIO)")
        #expect(planner.received(Self.event(.announced, to: Self.server2, 5999)) == [
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server2, port: 5999), backup: false),
        ], "while it stands in, the backup's new subflows are not backup ones")
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 40999, to: Self.server2, 5999))
        let standby2 = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40999, remote: Self.server2, remotePort: 5999)

        #expect(planner.setInUse(Self.wan1, true) == [
            .setBackup(token: Self.token, standby, true),
            .setBackup(token: Self.token, standby2, true),
            .setBackup(token: Self.token, first, false),
            .create(token: Self.token, local: Self.client1, localID: 0, remote: .init(address: Self.server1, port: 5201), backup: false),
            .create(token: Self.token, local: Self.client1, localID: 0, remote: .init(address: Self.server2, port: 5999), backup: false),
        ], "the active path is back: the backup stands by again, the stuck first subflow may carry again, fresh subflows beside it")
        #expect(planner.received(Self.event(.subflowEstablished, from: Self.client1, 61000, to: Self.server1, 5201)) == [.destroy(token: Self.token, first)],
                "a fresh subflow on the path: the stuck one goes (make before break)")
    }

    @Test func losingABackupPathWhileAnActiveOneWorksChangesNothingForTheActiveOne() {
        var planner = Self.withBackup()
        _ = planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client2, 40777, to: Self.server1, 5201))
        let standby = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40777, remote: Self.server1, remotePort: 5201)
        #expect(planner.setInUse(Self.wan2, false) == [.removeAddress(token: Self.token, localID: 2), .destroy(token: Self.token, standby)])
        #expect(planner.setInUse(Self.wan2, false).isEmpty, "a path already out of use: nothing")
    }

    @Test func replacingTheFirstSubflowClosesItAndTellsThePeerAtOnce() {
        var planner = UserspaceSubflowPlanner(paths: [.init(identifier: Self.wan1, address: Self.client1, localID: 1),
                                                      .init(identifier: Self.wan2, address: Self.client2, localID: 2)], firstSubflow: .replace)
        _ = planner.setInUse(Self.wan1, true)
        _ = planner.setInUse(Self.wan2, true)
        _ = planner.received(Self.event(.created, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201))
        let first = UserspaceSubflowPlanner.Subflow(local: Self.client1, localPort: 60688, remote: Self.server1, remotePort: 5201)
        #expect(planner.setInUse(Self.wan1, false) == [.destroy(token: Self.token, first), .removeAddress(token: Self.token, localID: 0)],
                "the first subflow goes before the RM_ADDR of id 0, so the kernel carries it on a subflow that works")
        #expect(planner.setInUse(Self.wan1, true) == [
            .create(token: Self.token, local: Self.client1, localID: 1, remote: .init(address: Self.server1, port: 5201), backup: false),
        ], "id 0 was removed: the fresh subflow takes the path's own id")
    }

    // A restarted path manager takes in what sock_diag shows.
    static func found(from local: IPAddress, _ localPort: UInt16, to remote: IPAddress, _ remotePort: UInt16, id: UInt8, initial: Bool = false,
                      backup: Bool = false, token: UInt32 = token) -> SockDiag.Subflow {
        SockDiag.Subflow(token: token, localAddress: local, localPort: localPort, remoteAddress: remote, remotePort: remotePort,
                         localID: id, initial: initial, backup: backup)
    }

    @Test func aRestartedPlannerAdoptsConnectionsAsTheyAreAndOnlyAddsWhatIsMissing() {
        var planner = Self.planner()
        let whole = [Self.found(from: Self.client1, 60688, to: Self.server1, 5201, id: 0, initial: true),
                     Self.found(from: Self.client2, 40777, to: Self.server1, 5201, id: 2)]
        #expect(planner.adopt(whole).isEmpty, "both paths carry a subflow already: nothing to change")
        #expect(planner.connectionCount == 1 && planner.subflows(of: Self.token).count == 2)
        // A second connection that lost its wan2 subflow while no path manager ran.
        let other: UInt32 = 0x1234
        #expect(planner.adopt([Self.found(from: Self.client1, 60700, to: Self.server1, 5201, id: 0, initial: true, token: other)]) == [
            .create(token: other, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
        ])
        #expect(planner.adopt(whole).isEmpty, "a known connection is not adopted twice")
        // Adopted connections are managed like the others: wan2 lost, then back.
        let joined = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 40777, remote: Self.server1, remotePort: 5201)
        #expect(planner.setInUse(Self.wan2, false) == [.removeAddress(token: Self.token, localID: 2), .destroy(token: Self.token, joined)],
                "the second connection's wan2 subflow is only requested, not established: nothing to retire there")
    }

    @Test func anAdoptedConnectionOnAPathOutOfUseIsRetiredThere() {
        var planner = Self.planner()
        _ = planner.setInUse(Self.wan2, false)
        let joined = Self.found(from: Self.client2, 40777, to: Self.server2, 5999, id: 2)
        let actions = planner.adopt([Self.found(from: Self.client1, 60688, to: Self.server1, 5201, id: 0, initial: true), joined])
        #expect(actions == [
            .create(token: Self.token, local: Self.client1, localID: 0, remote: .init(address: Self.server2, port: 5999), backup: false),
            .removeAddress(token: Self.token, localID: 2),
            .destroy(token: Self.token, .init(local: Self.client2, localPort: 40777, remote: Self.server2, remotePort: 5999)),
        ], "the peer's second address (seen on a subflow) gets one from wan1; wan2's subflow goes")
        // The first subflow's path lost (keep): marked backup, not closed.
        var second = Self.planner()
        _ = second.setInUse(Self.wan1, false)
        let first = Self.found(from: Self.client1, 60688, to: Self.server1, 5201, id: 0, initial: true)
        #expect(second.adopt([first]) == [
            .setBackup(token: Self.token, .init(local: Self.client1, localPort: 60688, remote: Self.server1, remotePort: 5201), true),
            .create(token: Self.token, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
        ])
        #expect(second.connectionCount == 1)
        second.forget(Self.token)
        #expect(second.connectionCount == 0)
    }

    @Test func aRenumberedPathClosesEverySubflowFromItsOldAddressAndUsesTheNewOne() {
        var planner = Self.planner()
        let renumbered = IPAddress.v4(0x0A52_0107)   // 10.82.1.7
        // The connection began on wan2: its first subflow is from the address that goes.
        _ = planner.received(Self.event(.created, from: Self.client2, 50000, to: Self.server1, 5201))
        _ = planner.received(Self.event(.established, from: Self.client2, 50000, to: Self.server1, 5201))
        _ = planner.received(Self.event(.subflowEstablished, from: Self.client1, 50001, to: Self.server1, 5201))
        let first = UserspaceSubflowPlanner.Subflow(local: Self.client2, localPort: 50000, remote: Self.server1, remotePort: 5201)
        #expect(planner.setInUse(Self.wan2, false) == [.setBackup(token: Self.token, first, true)], "keep: the first subflow only marked backup")
        #expect(planner.renumber(Self.wan2, to: renumbered) == [.destroy(token: Self.token, first), .removeAddress(token: Self.token, localID: 0)],
                "the old address will not return: its first subflow goes too, then RM_ADDR 0")
        #expect(planner.paths.first { $0.identifier == Self.wan2 }?.address == renumbered)
        #expect(planner.renumber(Self.wan2, to: renumbered).isEmpty, "once")
        #expect(planner.setInUse(Self.wan2, true) == [
            .create(token: Self.token, local: renumbered, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
        ], "the new address carries the path's own id (id 0 was the old one's)")
        // Renumbered while in use (the new address came before the old one went): at once.
        let again = IPAddress.v4(0x0A52_0108)
        _ = planner.received(Self.event(.subflowEstablished, from: renumbered, 50002, to: Self.server1, 5201))
        #expect(planner.renumber(Self.wan2, to: again) == [
            .removeAddress(token: Self.token, localID: 2),
            .destroy(token: Self.token, .init(local: renumbered, localPort: 50002, remote: Self.server1, remotePort: 5201)),
            .create(token: Self.token, local: again, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false),
        ])
    }

    @Test func afterLostEventsTheConnectionsAreTakenAsSockDiagShowsThem() {
        var planner = Self.planner()
        // Known: created and established came; wan2's subflow request was sent.
        _ = planner.received(Self.event(.created, from: Self.client1, 60688, to: Self.server1, 5201))
        _ = planner.received(Self.event(.established, from: Self.client1, 60688, to: Self.server1, 5201))
        // Known too, but closed while the events were dropped.
        let closed: UInt32 = 0x99
        var created = Self.event(.created, from: Self.client1, 60999, to: Self.server1, 5201)
        created.token = closed
        _ = planner.received(created)
        #expect(planner.connectionCount == 2)
        // What sock_diag shows: the first connection with its wan2 subflow (its "subflow
        // established" was lost), and a connection whose every event was lost.
        let unknown: UInt32 = 0x77
        let actions = planner.resynchronize([
            Self.found(from: Self.client1, 60688, to: Self.server1, 5201, id: 0, initial: true),
            Self.found(from: Self.client2, 40777, to: Self.server1, 5201, id: 2),
            Self.found(from: Self.client1, 61000, to: Self.server1, 5201, id: 0, initial: true, token: unknown),
        ])
        #expect(actions == [.create(token: unknown, local: Self.client2, localID: 2, remote: .init(address: Self.server1, port: 5201), backup: false)],
                "the known connection has both subflows: nothing to ask; the unknown one is adopted and gets its second")
        #expect(planner.connectionCount == 2 && planner.subflows(of: Self.token).count == 2 && planner.subflows(of: closed).isEmpty)
    }
}
