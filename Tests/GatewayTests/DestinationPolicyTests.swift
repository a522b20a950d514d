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
        // Nothing forwards into the operator's own networks unless told to.
        for host in ["10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1", "100.127.255.1", "fc00::1", "fd12:3456::1",
                     "::ffff:10.0.0.1", "::ffff:192.168.0.1"] {
            guard case .refused(let reason) = policy.check(destination(host, 80)) else {
                Issue.record("\(host) allowed")
                continue
            }
            #expect(reason.contains("allow it with an address rule"), "\(reason)")
        }
        #expect(policy.check(destination("172.32.0.1", 80)) == .allowed)
        #expect(policy.check(destination("100.128.0.1", 80)) == .allowed)
        #expect(policy.check(destination("fe00::1", 80)) == .allowed)
        #expect(policy.check(resolved: IPAddress("10.0.0.7")!, name: "intranet.example", port: 80) != .allowed)
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

    @Test func privateRangeOpensToAnAddressRuleOnly() throws {
        let opened = DestinationPolicy(allow: [try DestinationRule(parsing: "10.0.0.0/8")])
        #expect(opened.check(destination("10.9.8.7", 443)) == .allowed)
        #expect(opened.check(destination("192.168.0.1", 443)) != .allowed)
        let byName = DestinationPolicy(allow: [try DestinationRule(parsing: "intranet.example"), try DestinationRule(parsing: "*")])
        #expect(byName.check(resolved: IPAddress("10.0.0.7")!, name: "intranet.example", port: 80) != .allowed)
    }

    @Test func tunnelsReachPort443UnlessARuleNamesThePort() throws {
        let plain = DestinationPolicy()
        #expect(plain.checkTunnel(destination("example.org", 443)) == .allowed)
        #expect(plain.checkTunnel(destination("192.0.2.1", 443)) == .allowed)
        for port: UInt16 in [22, 25, 80, 8443] {
            guard case .refused(let reason) = plain.checkTunnel(destination("example.org", port)) else {
                Issue.record("port \(port) tunnelled")
                continue
            }
            #expect(reason.contains("limited to port 443"), "\(reason)")
        }
        // `*` admits every destination but names no port: the port limit stays.
        #expect(DestinationPolicy(allow: [try DestinationRule(parsing: "*")]).checkTunnel(destination("example.org", 22)) != .allowed)
        let named = DestinationPolicy(allow: [try DestinationRule(parsing: "git.example.org:22"), try DestinationRule(parsing: "192.0.2.0/24:5000-5999")])
        #expect(named.checkTunnel(destination("git.example.org", 22)) == .allowed)
        #expect(named.checkTunnel(destination("www.example.org", 22)) != .allowed)
        #expect(named.checkTunnel(destination("192.0.2.9", 5432)) == .allowed)
        #expect(named.checkTunnel(destination("198.51.100.9", 5432)) != .allowed)
        // Extra tunnel ports, still under the ordinary rules (a protected range stays closed).
        #expect(plain.checkTunnel(destination("example.org", 8443), tunnelPorts: [443...443, 8000...8999]) == .allowed)
        #expect(plain.checkTunnel(destination("10.0.0.1", 443)) != .allowed)
    }

    @Test func clientAccessListAdmitsItsNetworksOnly() throws {
        #expect(ClientAccessList().admits(IPAddress("203.0.113.5")!))
        let list = try ClientAccessList(parsing: ["192.0.2.0/24", "[2001:db8::]/32", "198.51.100.7"])
        #expect(list.admits(IPAddress("192.0.2.200")!))
        #expect(list.admits(IPAddress("::ffff:192.0.2.1")!))
        #expect(list.admits(IPAddress("2001:db8::1")!))
        #expect(list.admits(IPAddress("198.51.100.7")!))
        #expect(!list.admits(IPAddress("198.51.100.8")!))
        #expect(!list.admits(IPAddress("127.0.0.1")!))
        #expect(throws: ClientAccessListError.self) { try ClientAccessList(parsing: ["example.org"]) }
        #expect(throws: ClientAccessListError.self) { try ClientAccessList(parsing: ["10.0.0.0/40"]) }
    }

    @Test func anOpenProxyBeyondLoopbackNeedsToBeAskedFor() throws {
        let any = IPAddress("0.0.0.0")!, loopback = IPAddress("127.0.0.1")!, v6Loopback = IPAddress("::1")!
        func problem(_ listen: [IPAddress], choosing: Bool = true, authenticated: Bool = false,
                     clients: ClientAccessList = ClientAccessList(), open: Bool = false) -> String? {
            ListenerExposure.openProxyProblem(listen: listen, clientChoosesDestination: choosing, authenticated: authenticated,
                                              clients: clients, openProxyAllowed: open)
        }
        #expect(problem([any])?.contains("open proxy") == true)
        #expect(problem([loopback, IPAddress("192.0.2.1")!])?.contains("192.0.2.1") == true)
        #expect(problem([loopback, v6Loopback, IPAddress("127.3.4.5")!]) == nil)
        #expect(problem([any], authenticated: true) == nil)
        #expect(problem([any], clients: try ClientAccessList(parsing: ["192.0.2.0/24"])) == nil)
        #expect(problem([any], open: true) == nil)
        #expect(problem([any], choosing: false) == nil)   // reverse proxy, pair exit, entry with a fixed destination
    }
}
