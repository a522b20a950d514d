extension TopologyPlan {
    /// What `testbed up` prints once a topology is up: its hosts with their namespaces, then
    /// each link's ends (host:interface and addresses) and its rate each way.
    public func summary(of topology: Topology) -> [String] {
        func end(_ i: Topology.Interface) -> String { "\(i.host):\(i.name) \(i.addresses.map { "\($0.address)" }.joined(separator: ","))" }
        func rate(_ s: Topology.Shaping) -> String { s.rateBitsPerSecond.map { "\(Double($0) / 1e6) Mbit/s" } ?? "unlimited" }
        return ["testbed \(topology.name) is up: " + topology.hosts.map { "\($0.name) (\(namespace($0.name)))" }.joined(separator: ", ")]
            + topology.links.map { "  \(end($0.a)) ↔ \(end($0.b))  \(rate($0.forward)) / \(rate($0.backward))" }
    }
}
