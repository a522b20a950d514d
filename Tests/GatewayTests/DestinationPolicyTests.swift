import Gateway
import RSerPoolWire
import Testing

@Suite struct DestinationPolicyTests {
    func destination(_ host: String, _ port: UInt16) -> ProxyDestination {
        ProxyDestination(host: ProxyDestination.parseHost(Substring(host))!, port: port)
    }

    @Test func protectedRangesAreRefusedByDefault() {
        let policy = DestinationPolicy()
        for host in ["127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "0.0.0.0", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1"] {
            #expect(policy.check(destination(host, 80)) != .allowed, "\(host)")
        }
        #expect(policy.check(destination("192.0.2.10", 80)) == .allowed)
        #expect(policy.check(destination("example.org", 80)) == .allowed)
        // A name is checked again once resolved: one that resolves to loopback is refused.
        #expect(policy.check(resolved: .ipv4Loopback, name: "localhost.example", port: 80) != .allowed)
    }

    @Test func protectedRangeOpensOnlyToAnAddressRule() throws {
        let byAddress = DestinationPolicy(allow: [try DestinationRule(parsing: "127.0.0.0/8:8000-8999")])
        #expect(byAddress.check(destination("127.0.0.1", 8080)) == .allowed)
        #expect(byAddress.check(destination("127.0.0.1", 22)) != .allowed)
        let byName = DestinationPolicy(allow: [try DestinationRule(parsing: "localhost"), try DestinationRule(parsing: "*")])
        #expect(byName.check(resolved: .ipv4Loopback, name: "localhost", port: 80) != .allowed)
    }

    @Test func denyWinsOverAllowAndDefaultDenyNeedsAnAllow() throws {
        let policy = DestinationPolicy(allow: [try DestinationRule(parsing: "example.org"), try DestinationRule(parsing: "[2001:db8::]/32:443")],
                                       deny: [try DestinationRule(parsing: "secret.example.org")], defaultAllow: false)
        #expect(policy.check(destination("example.org", 80)) == .allowed)
        #expect(policy.check(destination("www.example.org", 80)) == .allowed)
        #expect(policy.check(destination("secret.example.org", 80)) != .allowed)
        #expect(policy.check(destination("2001:db8::5", 443)) == .allowed)
        #expect(policy.check(destination("2001:db8::5", 80)) != .allowed)
        #expect(policy.check(destination("198.51.100.1", 80)) != .allowed)
        #expect(policy.check(resolved: IPAddress("198.51.100.1")!, name: "www.example.org", port: 80) == .allowed)
    }

    @Test func subdomainWildcardExcludesTheApex() throws {
        let rule = try DestinationRule(parsing: "*.example.org")
        let policy = DestinationPolicy(allow: [rule], defaultAllow: false)
        #expect(policy.check(resolved: IPAddress("192.0.2.1")!, name: "a.example.org", port: 1) == .allowed)
        #expect(policy.check(resolved: IPAddress("192.0.2.1")!, name: "example.org", port: 1) != .allowed)
        #expect(rule.description == "*.example.org")
    }

    @Test(arguments: ["10.0.0.0/33", "example.org:70000", "example.org:9-1", "exa mple.org", "10.0.0.0/8:x", ""])
    func badRulesAreRejectedWithTheText(text: String) {
        #expect(throws: DestinationRuleError.self) { try DestinationRule(parsing: text) }
    }

    @Test func networksMatchByPrefix() {
        let net = IPNetwork("10.1.0.0/16")!
        #expect(net.contains(IPAddress("10.1.255.3")!))
        #expect(!net.contains(IPAddress("10.2.0.1")!))
        #expect(IPNetwork("fe80::/10")!.contains(IPAddress("febf::1")!))
        #expect(!IPNetwork("fe80::/10")!.contains(IPAddress("fec0::1")!))
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
    }
}
