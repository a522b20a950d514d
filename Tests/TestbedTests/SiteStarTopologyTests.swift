import RSerPoolWire
import Testbed
import Testing

@Suite struct SiteStarTopologyTests {
    static let sites: [SiteStarTopology.Site] = [
        .init(name: "device", oneWayDelaySeconds: 0), .init(name: "edge", oneWayDelaySeconds: 0.0003),
        .init(name: "cloud", oneWayDelaySeconds: 0.002), .init(name: "cloud-far", oneWayDelaySeconds: 0.015),
    ]

    @Test func eachRemoteSiteGetsAHostALinkWithItsDelayAndARouteBack() throws {
        let star = try SiteStarTopology(name: "offload", sites: Self.sites)
        let topology = try TopologyParser.parse(star.text)
        #expect(topology.name == "offload")
        #expect(topology.hosts.map(\.name) == ["ue", "site1", "site2", "site3"])
        #expect(topology.host("ue")?.forwarding == true)
        #expect(topology.links.map(\.forward.delayMilliseconds) == [0.3, 2, 15])
        #expect(topology.links.map(\.backward.delayMilliseconds) == [0.3, 2, 15])
        #expect(topology.routes.count == 3)
        #expect(star.host(of: "device") == "ue" && star.host(of: "edge") == "site1" && star.host(of: "cloud-far") == "site3")
        #expect(star.address(of: "site2") == "10.90.2.2")
        #expect(star.address(of: "ue") == "10.90.1.1")
        // Every host's address is on one of the topology's links.
        let addresses = Set(topology.links.flatMap { [$0.a, $0.b] }.flatMap(\.addresses).map { "\($0.address)" })
        for host in topology.hosts.map(\.name) { #expect(addresses.contains(star.address(of: host)), "\(host)") }
    }

    @Test func badDelaysAreRefused() {
        #expect(throws: TopologyError.self) { try SiteStarTopology(name: "x", sites: [.init(name: "a", oneWayDelaySeconds: -1)]) }
        #expect(throws: TopologyError.self) { try SiteStarTopology(name: "x", sites: [.init(name: "a", oneWayDelaySeconds: 61)]) }
    }
}
