import NIOCore
import Testing
@testable import RSerPoolCore
import RSerPoolWire

/// Which authenticated identities may register where: the rules, and the registrar state
/// machine applying them (RFC 5355 §2.1 and §2.3).
@Suite struct PoolAuthorizationTests {
    static let t0 = NIODeadline.uptimeNanoseconds(10_000_000_000)
    static let a1 = AssociationID(1), a2 = AssociationID(2)

    @Test func rulesNameIdentitiesAndPools() throws {
        let rules = try PoolAuthorization(parsing: ["edge-1.example.net=CalcAppPool", "*=EchoPool", "admin=*", "edge-1.example.net=Other"])
        #expect(rules.permits("edge-1.example.net", pool: "CalcAppPool"))
        #expect(rules.permits("edge-1.example.net", pool: "Other"), "repeated identities add up")
        #expect(!rules.permits("edge-2.example.net", pool: "CalcAppPool"))
        #expect(rules.permits("edge-2.example.net", pool: "EchoPool"), "* is every authenticated identity")
        #expect(!rules.permits(nil, pool: "EchoPool"), "an unauthenticated association is never permitted")
        #expect(rules.permits("admin", pool: "Anything"))
        for bad in ["edge-1", "=Pool", "edge-1=", "edge-1= , "] {
            #expect(throws: AuthorizationRuleError.self, "\(bad)") { try PoolAuthorization(parsing: [bad]) }
        }
    }

    static func machine(proxies: Set<String> = []) throws -> RegistrarStateMachine {
        var configuration = RegistrarConfiguration(identifier: RegistrarIdentifier(0x1000))
        configuration.poolAuthorization = try PoolAuthorization(parsing: ["edge-1=CalcAppPool", "proxy=CalcAppPool"])
        configuration.proxyIdentities = proxies
        return RegistrarStateMachine(configuration: configuration, seed: 1)
    }

    static func register(_ machine: inout RegistrarStateMachine, _ id: UInt32, pool: PoolHandle = "CalcAppPool", address: IPAddress = .ipv4Loopback,
                         on association: AssociationID) -> (rejected: ErrorCauseCode?, reason: String?) {
        let element = PoolElementParameter(identifier: PoolElementIdentifier(id), registrationLife: 90_000,
                                           userTransport: .tcp(address, port: 7000), policy: .roundRobin)
        let actions = machine.received(.registration(ASAPRegistration(poolHandle: pool, poolElement: element)), on: association,
                                       peerAddress: .ipv4Loopback, now: t0)
        for action in actions {
            if case .event(.registrationRejected(_, _, let cause, let reason)) = action { return (cause, reason) }
        }
        return (nil, nil)
    }

    @Test func anAuthorizedIdentityRegistersAndOthersAreRefusedForSecurity() throws {
        var machine = try Self.machine()
        machine.associationAuthenticated(Self.a1, identity: "edge-1")
        #expect(Self.register(&machine, 1, on: Self.a1).rejected == nil)
        let otherPool = Self.register(&machine, 2, pool: "EchoPool", on: Self.a1)
        #expect(otherPool.rejected == .rejectedDueToSecurity)
        #expect(otherPool.reason?.contains("'edge-1' is not authorized for pool EchoPool") == true)
        let anonymous = Self.register(&machine, 3, on: Self.a2)
        #expect(anonymous.rejected == .rejectedDueToSecurity)
        #expect(anonymous.reason?.contains("not authenticated") == true)
        #expect(machine.handlespace.elementCount == 1, "the handlespace holds only the authorized PE")
        _ = machine.associationClosed(Self.a1)
        #expect(machine.identity(of: Self.a1) == nil, "an identity ends with its association")
    }

    @Test func onlyProxyIdentitiesRegisterAddressesOtherThanTheirOwn() throws {
        var machine = try Self.machine(proxies: ["proxy"])
        machine.associationAuthenticated(Self.a1, identity: "edge-1")
        machine.associationAuthenticated(Self.a2, identity: "proxy")
        let legacy = IPAddress("192.0.2.80")!
        #expect(Self.register(&machine, 1, address: legacy, on: Self.a1).rejected == .rejectedDueToSecurity, "edge-1 registers its own address only")
        #expect(Self.register(&machine, 2, address: legacy, on: Self.a2).rejected == nil, "the proxy registers the legacy server's")
    }
}
