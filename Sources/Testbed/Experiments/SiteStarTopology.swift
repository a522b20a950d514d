/// A device in the middle and one host per remote site, each on its own link with that site's
/// one-way delay: the network of the offloading scenario (device, edge, clouds) as a testbed
/// topology. The device forwards between the sites, so a site reaches another through it
/// (delays add up as they would through the device's access network).
///
/// Sites with no delay live on the device itself.
public struct SiteStarTopology: Hashable, Sendable {
    public static let deviceHost = "ue"

    public struct Site: Hashable, Sendable {
        public var name: String
        public var oneWayDelaySeconds: Double
        public init(name: String, oneWayDelaySeconds: Double) {
            self.name = name
            self.oneWayDelaySeconds = oneWayDelaySeconds
        }
    }

    public let name: String
    public let sites: [Site]

    /// At most 200 remote sites (one /24 each under 10.90.0.0/16).
    public static let maximumSites = 200

    public init(name: String, sites: [Site]) throws(TopologyError) {
        guard sites.filter({ $0.oneWayDelaySeconds > 0 }).count <= Self.maximumSites else {
            throw TopologyError(line: 0, "at most \(Self.maximumSites) sites with a delay")
        }
        for site in sites where !(0...60).contains(site.oneWayDelaySeconds) {
            throw TopologyError(line: 0, "site '\(site.name)': delay \(site.oneWayDelaySeconds) s is not 0…60 s")
        }
        self.name = name
        self.sites = sites
    }

    /// The remote sites in order, numbered from 1.
    private var remote: [(index: Int, site: Site)] {
        sites.filter { $0.oneWayDelaySeconds > 0 }.enumerated().map { ($0.offset + 1, $0.element) }
    }

    /// The host a site runs on.
    public func host(of siteName: String) -> String {
        remote.first { $0.site.name == siteName }.map { "site\($0.index)" } ?? Self.deviceHost
    }

    /// The host's address on its link to the device (the device's own: on its link to the first site).
    public func address(of host: String) -> String {
        if host == Self.deviceHost { return remote.isEmpty ? "127.0.0.1" : "10.90.\(remote[0].index).1" }
        guard let index = Int(host.dropFirst(4)) else { return "127.0.0.1" }
        return "10.90.\(index).2"
    }

    /// The topology file.
    public var text: String {
        var lines = ["# The offloading scenario's sites around the device (one-way delays per link).", "topology \(name)", "host \(Self.deviceHost) forward"]
        for (index, site) in remote {
            lines.append("host site\(index)   # \(site.name)")
        }
        for (index, site) in remote {
            let microseconds = Int((site.oneWayDelaySeconds * 1e6).rounded())
            lines.append("link \(Self.deviceHost):s\(index)=10.90.\(index).1/24 site\(index):u=10.90.\(index).2/24 delay=\(Double(microseconds) / 1000)ms")
        }
        for (index, _) in remote {
            lines.append("route site\(index) default via 10.90.\(index).1 dev u")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
