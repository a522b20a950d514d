import Foundation
import RSerPoolWire
import Testbed
import Testing

@Suite struct TopologyParserTests {
    static let twoISP = try! String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Topologies/two-isp.topo").standardized, encoding: .utf8)

    @Test func theShippedTwoISPTopologyParses() throws {
        let topology = try TopologyParser.parse(Self.twoISP)
        #expect(topology.name == "two-isp")
        #expect(topology.hosts.map(\.name) == ["client", "isp1", "isp2", "server"])
        #expect(topology.links.count == 4)
        #expect(topology.links[0].forward.rateBitsPerSecond == 40_000_000)
        #expect(topology.routes.filter { $0.host == "client" && $0.table != nil }.count == 2)
        #expect(topology.routes.count == 8)
        #expect(topology.mptcpEndpoints.map(\.flags) == [["signal"]])
        #expect(topology.mptcpEndpoints.map(\.port) == [5999])
    }

    @Test func directionsCanDiffer() throws {
        let topology = try TopologyParser.parse("""
        host a
        host b
        link a:x=10.0.0.1/24 b:y=10.0.0.2/24 rate=20mbit/10mbit delay=20ms loss=1%/0% queue=50
        """)
        let link = try #require(topology.links.first)
        #expect(link.forward.rateBitsPerSecond == 20_000_000 && link.backward.rateBitsPerSecond == 10_000_000)
        #expect(link.forward.delayMilliseconds == 20 && link.backward.delayMilliseconds == 20)
        #expect(link.forward.loss == 0.01 && link.backward.loss == 0)
        #expect(link.forward.queuePackets == 50)
    }

    @Test(arguments: [
        ("host a\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24", 2, "unknown host 'b'"),
        ("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.1/24", 3, "address 10.0.0.1 is already used on line 3"),
        ("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\nlink a:z=10.0.0.2/24 b:w=10.0.1.2/24", 4, "address 10.0.0.2 is already used on line 3"),
        ("host a\nhost b\n\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24 rate=fast", 4, "rate 'fast' is not a rate"),
        ("host a\nlink a:x=10.0.0.1/24 a:y=10.0.0.2/24", 2, "a link from host 'a' to itself"),
        ("host a\nhost a", 2, "already declared on line 1"),
        ("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\nlink a:x=10.0.1.1/24 b:z=10.0.1.2/24", 4, "interface a:x is already used on line 3"),
        ("host a\nroute a default via 10.0.0.1 from 10.0.0.2", 2, "needs its own table"),
        ("host a\nendpoint a 10.0.0.1 dev nope subflow", 2, "has no interface 'nope'"),
        ("host a\nbogus", 2, "unknown declaration 'bogus'"),
        ("host Upper", 1, "host wants a name"),
        ("host a\nhost b\nlink a:x=10.0.0.1 b:y=10.0.0.2/24", 3, "not an address with a prefix length"),
    ])
    func badFilesNameTheLine(text: String, line: Int, message: String) {
        do {
            _ = try TopologyParser.parse(text)
            Issue.record("accepted:\n\(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func unitsParse() {
        #expect(TopologyParser.parseRate("1.5gbit") == 1_500_000_000)
        #expect(TopologyParser.parseRate("512kbit") == 512_000)
        #expect(TopologyParser.parseRate("20Mbit") == 20_000_000)
        #expect(TopologyParser.parseRate("0mbit") == nil)
        #expect(TopologyParser.parseMilliseconds("500us") == 0.5)
        #expect(TopologyParser.parseMilliseconds("2s") == 2000)
    }
}

@Suite struct TopologyPlanTests {
    @Test func planCreatesNamespacesLinksShapingRoutesAndEndpoints() throws {
        let topology = try TopologyParser.parse(TopologyParserTests.twoISP)
        let plan = try TopologyPlan(topology, capabilities: .init(netem: false))
        let commands = plan.up.map(\.description)
        #expect(plan.namespaces == ["ept-two-isp-client", "ept-two-isp-isp1", "ept-two-isp-isp2", "ept-two-isp-server"])
        #expect(commands.first == "ip netns add ept-two-isp-client")
        #expect(commands.contains("ip link add name wan1 netns ept-two-isp-client type veth peer name cust netns ept-two-isp-isp1"))
        #expect(commands.contains { $0.hasPrefix("tc -n ept-two-isp-client qdisc add dev wan1 root tbf rate 40000000bit") })
        #expect(commands.contains("ip netns exec ept-two-isp-isp1 sysctl -qw net.ipv4.ip_forward=1"))
        #expect(commands.contains("ip -n ept-two-isp-client rule add from 10.82.1.1 table 102"))
        #expect(commands.contains("ip -n ept-two-isp-client route add default via 10.82.1.2 dev wan2 table 102"))
        #expect(commands.contains("ip -n ept-two-isp-server mptcp endpoint add 10.82.2.1 dev wan2 port 5999 signal"))
        // Namespaces come before the links that use them, links before routes.
        let firstLink = try #require(commands.firstIndex { $0.hasPrefix("ip link add") })
        let lastNamespace = try #require(commands.lastIndex { $0.hasPrefix("ip netns add") })
        let firstRoute = try #require(commands.firstIndex { $0.contains("route add") })
        #expect(lastNamespace < firstLink && firstLink < firstRoute)
        #expect(plan.up.filter(\.mayFail).allSatisfy { $0.description.contains("ethtool") })
    }

    @Test func ipv6RoutesAndRulesSayTheFamilyAndAddressesSkipDAD() throws {
        let topology = try TopologyParser.parse("""
        host a
        host b
        link a:x=fd00:1::1/64 b:y=fd00:1::2/64
        route a default via fd00:1::2 dev x
        route a default via fd00:1::2 dev x from fd00:1::1 table 7
        route b default dev y
        """)
        let commands = try TopologyPlan(topology, capabilities: .init(netem: true, emulator: nil)).up.map { $0.arguments.joined(separator: " ") }
        #expect(commands.contains("ip -n ept-testbed-a addr add fd00:1::1/64 dev x nodad"))
        #expect(commands.contains("ip -6 -n ept-testbed-a route add default via fd00:1::2 dev x"))
        #expect(commands.contains("ip -6 -n ept-testbed-a rule add from fd00:1::1 table 7"))
        #expect(commands.contains("ip -n ept-testbed-b route add default dev y"), "no address: IPv4")
        #expect(commands.contains("ip netns exec ept-testbed-a sysctl -qw net.ipv6.conf.all.keep_addr_on_down=1"))
    }

    @Test func endpointPorts() throws {
        let topology = try TopologyParser.parse("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\nendpoint a 10.0.0.1 dev x port=5999 signal")
        #expect(topology.mptcpEndpoints.first?.port == 5999 && topology.mptcpEndpoints.first?.flags == ["signal"])
        #expect(throws: TopologyError.self) { try TopologyParser.parse("host a\nendpoint a 10.0.0.1 dev x port=0 signal") }
        #expect(throws: TopologyError.self) { try TopologyParser.parse("host a\nendpoint a 10.0.0.1 dev x port=http signal") }
    }

    @Test func aHostWithEdgePoolsPathManagerRunsItWithAPathPerAddress() throws {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Topologies/two-isp-pm.topo").standardized, encoding: .utf8)
        let topology = try TopologyParser.parse(text)
        #expect(topology.hosts.first { $0.name == "client" }?.pathManager == .edgepool)
        #expect(topology.hosts.first { $0.name == "server" }?.pathManager == .kernel)
        let plan = try TopologyPlan(topology, capabilities: .init(netem: true, pathManager: ["/usr/bin/edgepool", "paths", "run"]))
        let step = try #require(plan.up.last)
        #expect(step.background)
        #expect(step.arguments == ["ip", "netns", "exec", "ept-two-isp-pm-client", "/usr/bin/edgepool", "paths", "run",
                                   "--path", "wan1=10.81.1.1,noprobe,id=1", "--path", "wan2=10.82.1.1,noprobe,id=2", "--userspace", "--log-level", "info"])
        #expect(throws: TopologyError.self, "no path manager command") { try TopologyPlan(topology, capabilities: .init(netem: true)) }
        let managedTwice = "host a pm=edgepool\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\nendpoint a 10.0.0.1 dev x subflow"
        #expect(throws: TopologyError.self, "endpoint lines for a managed host") {
            try TopologyPlan(try TopologyParser.parse(managedTwice), capabilities: .init(netem: true, pathManager: ["edgepool", "paths", "run"]))
        }
        #expect(throws: TopologyError.self) { try TopologyParser.parse("host a pm=mptcpd") }
    }

    @Test func pathLinesGiveAManagedHostsPathsProbeTargetsAndBackupRoles() throws {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Topologies/two-isp-delay-pm.topo").standardized, encoding: .utf8)
        let topology = try TopologyParser.parse(text)
        #expect(topology.paths.map(\.interface) == ["wan1", "wan2"])
        let plan = try TopologyPlan(topology, capabilities: .init(netem: true, pathManager: ["edgepool", "paths", "run"]))
        let step = try #require(plan.up.last)
        #expect(step.arguments.suffix(7) == ["--path", "wan1=10.81.1.1,probe=10.81.2.1:9,id=1", "--path", "wan2=10.82.1.1,probe=10.82.2.1:9,id=2",
                                             "--userspace", "--log-level", "info"])
        let v6 = "host a pm=edgepool\nhost b\nlink a:x=fd00::1/64 b:y=fd00::2/64\npath a:x probe=[fd00::2]:9 backup"
        let v6Step = try #require(try TopologyPlan(try TopologyParser.parse(v6), capabilities: .init(netem: true, pathManager: ["edgepool", "paths", "run"])).up.last)
        #expect(v6Step.arguments.contains("x=fd00::1,probe=[fd00::2]:9,backup,id=1"))
        for (bad, why) in [("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\npath a:x probe=10.0.0.2:9", "a host on the kernel's PM"),
                           ("host a pm=edgepool\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\npath a:z backup", "no such interface"),
                           ("host a pm=edgepool\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\npath a:x probe=10.0.0.2", "no port"),
                           ("host a pm=edgepool\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\npath a:x backup\npath a:x backup", "twice"),
                           ("host a pm=edgepool\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24\npath a:x sometimes", "unknown option")] {
            #expect(throws: TopologyError.self, "\(why)") { try TopologyParser.parse(bad) }
        }
    }

    @Test func delayWithoutNetemIsRefusedNamingTheLine() throws {
        let topology = try TopologyParser.parse("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24 delay=20ms")
        #expect(throws: TopologyError.self) { try TopologyPlan(topology, capabilities: .init(netem: false)) }
        let plan = try TopologyPlan(topology, capabilities: .init(netem: true))
        #expect(plan.up.contains { $0.description.contains("netem delay 20.0ms") })
    }

    @Test func withoutNetemALinkWithDelayGoesThroughTheEmulator() throws {
        let topology = try TopologyParser.parse("topology t\nhost a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24 rate=100mbit delay=10ms/5ms loss=1%")
        let plan = try TopologyPlan(topology, capabilities: .init(netem: false, emulator: ["edgepool", "testbed", "emulate"]))
        let commands = plan.up.map(\.description)
        #expect(plan.namespaces == ["ept-t-a", "ept-t-b", "ept-t-emu.0"])
        #expect(commands.contains("ip link add name x netns ept-t-a type veth peer name a netns ept-t-emu.0"))
        #expect(commands.contains { $0.hasPrefix("tc -n ept-t-emu.0 qdisc add dev b root tbf rate 100000000bit") })
        let emulator = try #require(plan.up.first { $0.background })
        #expect(emulator.description.contains("--delay 10.0ms/5.0ms"))
        #expect(emulator.description.contains("--loss 1.0%/1.0%"))
        #expect(!commands.contains { $0.contains("netem") })
    }
}
