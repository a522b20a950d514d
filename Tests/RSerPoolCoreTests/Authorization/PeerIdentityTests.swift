import NIOCore
import Testing
@testable import RSerPoolCore
import RSerPoolWire

/// Peer registrars under TLS: an identifier belongs to the identity that first claimed it, and
/// only the owner of a PE may remove it with a Handle Update (RFC 5355 §4).
@Suite struct PeerIdentityTests {
    static let t0 = NIODeadline.uptimeNanoseconds(100_000_000_000)
    static let me = RegistrarIdentifier(0x10), two = RegistrarIdentifier(0x20), three = RegistrarIdentifier(0x30)

    static func presence(_ sender: RegistrarIdentifier) -> ENRPMessage {
        ENRPMessage(sender: sender, receiver: me, .presence(checksum: 0, server: ServerInformation(identifier: sender, transport: .tcp(.ipv4Loopback, port: 9900)),
                                                            replyRequired: false))
    }

    static func update(_ sender: RegistrarIdentifier, _ action: HandleUpdateAction, _ id: UInt32) -> ENRPMessage {
        let element = PoolElementParameter(identifier: PoolElementIdentifier(id), homeRegistrar: sender, registrationLife: 90_000,
                                           userTransport: .tcp(.ipv4Loopback, port: 7000), policy: .roundRobin)
        return ENRPMessage(sender: sender, receiver: me, .handleUpdate(action: action, poolHandle: "Pool", element: element, takeoverSuggested: false))
    }

    static func machine() -> RegistrarStateMachine {
        var machine = RegistrarStateMachine(configuration: RegistrarConfiguration(identifier: me), seed: 1)
        _ = machine.startPeering(enrpTransport: .tcp(.ipv4Loopback, port: 9901), staticPeers: [], now: t0)
        return machine
    }

    static func refused(_ actions: [RegistrarStateMachine.Action]) -> String? {
        for action in actions { if case .event(.peerRefused(_, let reason)) = action { return reason } }
        return nil
    }

    @Test func aSecondIdentityClaimingARegistrarIdentifierIsRefused() {
        var machine = Self.machine()
        let genuine = AssociationID(1), forger = AssociationID(2)
        _ = machine.peerAssociationEstablished(genuine, now: Self.t0)
        _ = machine.peerAssociationEstablished(forger, now: Self.t0)
        machine.associationAuthenticated(genuine, identity: "pr-2.example.net")
        machine.associationAuthenticated(forger, identity: "edge-1.example.net")
        #expect(Self.refused(machine.receivedPeer(Self.presence(Self.two), on: genuine, now: Self.t0)) == nil)
        let actions = machine.receivedPeer(Self.presence(Self.two), on: forger, now: Self.t0)
        #expect(Self.refused(actions)?.contains("'edge-1.example.net' claims registrar \(Self.two)") == true)
        #expect(actions.contains { if case .close(let association, _) = $0 { association == forger } else { false } })
    }

    @Test func onlyTheOwnerOfAPEMayRemoveIt() {
        var machine = Self.machine()
        let a2 = AssociationID(1), a3 = AssociationID(2)
        for (association, peer) in [(a2, Self.two), (a3, Self.three)] {
            _ = machine.peerAssociationEstablished(association, now: Self.t0)
            _ = machine.receivedPeer(Self.presence(peer), on: association, now: Self.t0)
        }
        _ = machine.receivedPeer(Self.update(Self.two, .addPoolElement, 7), on: a2, now: Self.t0)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(7))?.owner == Self.two)
        let foreign = machine.receivedPeer(Self.update(Self.three, .deletePoolElement, 7), on: a3, now: Self.t0)
        #expect(Self.refused(foreign)?.contains("owns: ignored") == true)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(7)) != nil, "another registrar cannot remove it")
        _ = machine.receivedPeer(Self.update(Self.two, .deletePoolElement, 7), on: a2, now: Self.t0)
        #expect(machine.handlespace.entry("Pool", PoolElementIdentifier(7)) == nil, "its owner can")
    }
}
