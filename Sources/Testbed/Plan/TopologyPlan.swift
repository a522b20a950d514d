import PathManager
import RSerPoolWire

/// The commands that bring a topology up and take it down, in order: pure data, so that a
/// plan can be checked without creating anything and printed for a dry run.
public struct TopologyPlan: Sendable {
    /// Namespaces of all testbeds start with this; `edgepool testbed down --all` removes them.
    public static let namespacePrefix = "ept-"

    /// What the kernel offers for link emulation.
    public struct Capabilities: Sendable {
        /// `tc qdisc … netem` works (delay, jitter, loss in the kernel).
        public var netem: Bool
        /// The command that starts the userspace link emulator (`edgepool testbed emulate`);
        /// used for delay, jitter and loss when there is no netem.
        public var emulator: [String]?
        /// The command that runs EdgePool's path manager (`edgepool paths run`), for hosts
        /// with `pm=edgepool`.
        public var pathManager: [String]?
        public init(netem: Bool, emulator: [String]? = nil, pathManager: [String]? = nil) {
            self.pathManager = pathManager
            self.netem = netem
            self.emulator = emulator
        }
    }

    /// One command of the plan.
    public struct Step: Hashable, Sendable, CustomStringConvertible {
        public var arguments: [String]
        /// A failure is reported but does not stop the plan (tuning that a machine may lack).
        public var mayFail: Bool
        /// Started and left running (the link emulator); its namespace's removal stops it.
        public var background = false
        public var description: String { arguments.joined(separator: " ") + (background ? " &" : "") }
    }

    public let topology: Topology
    public let capabilities: Capabilities
    /// Run one after another; the first failure (of a step that may not fail) stops the plan,
    /// and whatever was created is removed.
    public private(set) var up: [Step] = []

    public init(_ topology: Topology, capabilities: Capabilities) throws(TopologyError) {
        self.topology = topology
        self.capabilities = capabilities
        try build()
    }

    public static func namespace(topology: String, host: String) -> String { "\(namespacePrefix)\(topology)-\(host)" }

    public func namespace(_ host: String) -> String { Self.namespace(topology: topology.name, host: host) }

    /// The namespaces this topology uses (hosts, then link emulators); removing them removes
    /// every link and process with them.
    public private(set) var namespaces: [String] = []

    /// The namespace of the emulator of link `index` (a '.' no host name has).
    public func emulatorNamespace(_ index: Int) -> String { "\(Self.namespacePrefix)\(topology.name)-emu.\(index)" }

    private mutating func build() throws(TopologyError) {
        for host in topology.hosts {
            let ns = namespace(host.name)
            namespaces.append(ns)
            add(["ip", "netns", "add", ns])
            add(["ip", "-n", ns, "link", "set", "lo", "up"])
            add(sysctl(ns, "net.mptcp.enabled", "1"))
            // IPv6 addresses survive a link going down and up (the failure scenarios' "down").
            add(sysctl(ns, "net.ipv6.conf.all.keep_addr_on_down", "1"))
            if host.forwarding {
                add(sysctl(ns, "net.ipv4.ip_forward", "1"))
                add(sysctl(ns, "net.ipv6.conf.all.forwarding", "1"))
            }
            if let cc = host.congestionControl { add(sysctl(ns, "net.ipv4.tcp_congestion_control", cc)) }
            if host.mptcpSubflows != nil || host.mptcpAddAddrAccepted != nil {
                add(["ip", "-n", ns, "mptcp", "limits", "set", "subflow", "\(host.mptcpSubflows ?? 2)",
                     "add_addr_accepted", "\(host.mptcpAddAddrAccepted ?? 2)"])
            }
        }
        for (index, link) in topology.links.enumerated() {
            let a = namespace(link.a.host), b = namespace(link.b.host)
            let emulated = !capabilities.netem && (link.forward.needsDelayLine || link.backward.needsDelayLine)
            if emulated {
                try addEmulatedLink(link, index: index, a: a, b: b)
            } else {
                add(["ip", "link", "add", "name", link.a.name, "netns", a, "type", "veth", "peer", "name", link.b.name, "netns", b])
            }
            for (ns, end) in [(a, link.a), (b, link.b)] {
                for address in end.addresses {
                    // IPv6: usable at once, without duplicate address detection's wait.
                    let noDAD = Self.isIPv6(address.address) ? ["nodad"] : []
                    add(["ip", "-n", ns, "addr", "add", "\(address.address)/\(address.prefixLength)", "dev", end.name] + noDAD)
                }
                // No offloads: the emulated link sees frames as they would be on a wire (the
                // userspace emulator cannot pass on 64 KiB GSO frames: required then).
                add(["ip", "netns", "exec", ns, "ethtool", "-K", end.name, "tx", "off", "tso", "off", "gso", "off", "gro", "off"], mayFail: !emulated)
                add(["ip", "-n", ns, "link", "set", "dev", end.name, "up"])
            }
            if !emulated {
                try shape(ns: a, device: link.a.name, link.forward, line: link.line)
                try shape(ns: b, device: link.b.name, link.backward, line: link.line)
            }
        }
        for route in topology.routes {
            let ns = namespace(route.host)
            // The family from the route's addresses ("default" alone would mean IPv4).
            let family = [route.destination?.address, route.gateway, route.source].contains { $0.map(Self.isIPv6) ?? false } ? ["-6"] : []
            var command = ["ip"] + family + ["-n", ns, "route", "add", route.destination.map { "\($0.address)/\($0.prefixLength)" } ?? "default"]
            if let gateway = route.gateway { command += ["via", "\(gateway)"] }
            if let device = route.device { command += ["dev", device] }
            if let table = route.table { command += ["table", "\(table)"] }
            add(command)
            if let source = route.source, let table = route.table {
                add(["ip"] + family + ["-n", ns, "rule", "add", "from", "\(source)", "table", "\(table)"])
            }
        }
        for endpoint in topology.mptcpEndpoints {
            add(["ip", "-n", namespace(endpoint.host), "mptcp", "endpoint", "add", "\(endpoint.address)", "dev", endpoint.device]
                + (endpoint.port.map { ["port", "\($0)"] } ?? []) + endpoint.flags)
        }
        for host in topology.hosts where host.pathManager == .edgepool {
            try addPathManager(host)
        }
    }

    /// `edgepool paths run --userspace` in the host, last (the routes it snapshots are in
    /// place): one path per interface address, ids in link order, the link state deciding
    /// unless a `path` line gives the interface a probe target (and/or makes it a backup). The userspace PM, because a testbed's ISPs route only their own addresses: a
    /// returning path needs its subflow to the peer's address on the same ISP, often an
    /// announced one, which the in-kernel PM does not re-open (docs/path-manager).
    private mutating func addPathManager(_ host: Topology.Host) throws(TopologyError) {
        guard let command = capabilities.pathManager else {
            throw TopologyError(line: host.line, "pm=edgepool needs the edgepool executable's path manager")
        }
        if topology.mptcpEndpoints.contains(where: { $0.host == host.name }) {
            throw TopologyError(line: host.line, "pm=edgepool manages \(host.name)'s endpoints itself: remove its endpoint lines")
        }
        var paths: [String] = []
        for link in topology.links {
            for end in [link.a, link.b] where end.host == host.name {
                let options = topology.paths.first { $0.host == host.name && $0.interface == end.name }
                var watch = options?.probe.map { "probe=\(Self.isIPv6($0.address) ? "[\($0.address)]" : "\($0.address)"):\($0.port)" } ?? "noprobe"
                if options?.backup == true { watch += ",backup" }
                for address in end.addresses {
                    paths += ["--path", "\(end.name)=\(address.address),\(watch),id=\(paths.count / 2 + 1)"]
                }
            }
        }
        guard !paths.isEmpty else { throw TopologyError(line: host.line, "pm=edgepool: \(host.name) has no addresses") }
        let firstSubflow = host.replacesFirstSubflow ? ["--first-subflow", "replace"] : []
        up.append(Step(arguments: ["ip", "netns", "exec", namespace(host.name)] + command + paths + ["--userspace"] + firstSubflow + ["--log-level", "info"],
                       mayFail: false, background: true))
    }

    static func isIPv6(_ address: IPAddress) -> Bool {
        if case .v6 = address { return true }
        return false
    }

    /// A link through an emulator namespace: A ─ a [emulator] b ─ B. The emulator process
    /// moves frames between its `a` and `b` with the delay, jitter and loss; the rate limits
    /// sit on its egress interfaces (a→b traffic leaves through `b`).
    private mutating func addEmulatedLink(_ link: Topology.Link, index: Int, a: String, b: String) throws(TopologyError) {
        guard let emulator = capabilities.emulator else {
            throw TopologyError(line: link.line, "delay, jitter and loss need tc netem or the userspace link emulator")
        }
        let emu = emulatorNamespace(index)
        namespaces.append(emu)
        add(["ip", "netns", "add", emu])
        add(["ip", "-n", emu, "link", "set", "lo", "up"])
        add(["ip", "link", "add", "name", link.a.name, "netns", a, "type", "veth", "peer", "name", "a", "netns", emu])
        add(["ip", "link", "add", "name", link.b.name, "netns", b, "type", "veth", "peer", "name", "b", "netns", emu])
        for side in ["a", "b"] {
            add(["ip", "netns", "exec", emu, "ethtool", "-K", side, "tx", "off", "tso", "off", "gso", "off", "gro", "off"])
            add(["ip", "-n", emu, "link", "set", "dev", side, "up"])
        }
        var rateOnly = link.forward
        rateOnly.delayMilliseconds = 0; rateOnly.jitterMilliseconds = 0; rateOnly.loss = 0
        try shape(ns: emu, device: "b", rateOnly, line: link.line)
        rateOnly = link.backward
        rateOnly.delayMilliseconds = 0; rateOnly.jitterMilliseconds = 0; rateOnly.loss = 0
        try shape(ns: emu, device: "a", rateOnly, line: link.line)
        func pair(_ forward: String, _ backward: String) -> String { "\(forward)/\(backward)" }
        let command = emulator + ["--a", "a", "--b", "b",
            "--delay", pair("\(link.forward.delayMilliseconds)ms", "\(link.backward.delayMilliseconds)ms"),
            "--jitter", pair("\(link.forward.jitterMilliseconds)ms", "\(link.backward.jitterMilliseconds)ms"),
            "--loss", pair("\(link.forward.loss * 100)%", "\(link.backward.loss * 100)%"),
            "--seed", "\(index + 1)"]
        up.append(Step(arguments: ["ip", "netns", "exec", emu] + command, mayFail: false, background: true))
    }

    /// Egress shaping of one direction: tbf for a rate alone; netem for delay, jitter and
    /// loss when the kernel has it.
    private mutating func shape(ns: String, device: String, _ shaping: Topology.Shaping, line: Int) throws(TopologyError) {
        if shaping.needsDelayLine {
            guard capabilities.netem else {
                throw TopologyError(line: line, "delay, jitter and loss need tc netem, which this kernel lacks (the userspace emulator is used when the plan has one)")
            }
            var command = ["tc", "-n", ns, "qdisc", "add", "dev", device, "root", "netem"]
            if shaping.delayMilliseconds > 0 || shaping.jitterMilliseconds > 0 {
                command += ["delay", "\(shaping.delayMilliseconds)ms"]
                if shaping.jitterMilliseconds > 0 { command += ["\(shaping.jitterMilliseconds)ms"] }
            }
            if shaping.loss > 0 { command += ["loss", "\(shaping.loss * 100)%"] }
            if let rate = shaping.rateBitsPerSecond { command += ["rate", "\(rate)bit"] }
            command += ["limit", "\(queuePackets(shaping))"]
            add(command)
        } else if let rate = shaping.rateBitsPerSecond {
            add(["tc", "-n", ns, "qdisc", "add", "dev", device, "root"] + TokenBucketShaping(bitsPerSecond: rate, queuePackets: shaping.queuePackets).tbfParameters)
        }
    }

    /// The queue in packets: as configured, else about 100 ms at the rate (at least 10).
    func queuePackets(_ shaping: Topology.Shaping) -> Int {
        guard let rate = shaping.rateBitsPerSecond else { return shaping.queuePackets ?? 1000 }
        return TokenBucketShaping(bitsPerSecond: rate, queuePackets: shaping.queuePackets).queue
    }

    private mutating func add(_ arguments: [String], mayFail: Bool = false) {
        up.append(Step(arguments: arguments, mayFail: mayFail))
    }

    private func sysctl(_ ns: String, _ key: String, _ value: String) -> [String] {
        ["ip", "netns", "exec", ns, "sysctl", "-qw", "\(key)=\(value)"]
    }
}
