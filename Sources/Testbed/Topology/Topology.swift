import RSerPoolWire

/// A testbed network: hosts (network namespaces), the links between them (veth pairs with
/// per-direction link properties), routes and MPTCP settings. Built by ``TopologyParser``
/// from a topology file; turned into commands by ``TopologyPlan``.
public struct Topology: Hashable, Sendable {
    public var name: String
    public var hosts: [Host]
    public var links: [Link]
    public var routes: [Route]
    public var mptcpEndpoints: [MPTCPEndpoint]
    /// How EdgePool's path manager treats a `pm=edgepool` host's interfaces (`path` lines).
    public var paths: [PathOptions] = []

    public init(name: String, hosts: [Host] = [], links: [Link] = [], routes: [Route] = [], mptcpEndpoints: [MPTCPEndpoint] = []) {
        self.name = name
        self.hosts = hosts
        self.links = links
        self.routes = routes
        self.mptcpEndpoints = mptcpEndpoints
    }

    public func host(_ name: String) -> Host? { hosts.first { $0.name == name } }

    public struct Host: Hashable, Sendable {
        public var name: String
        /// tcp_congestion_control inside the namespace (nil: the kernel's default).
        public var congestionControl: String?
        /// Forward IP packets (a router).
        public var forwarding = false
        /// MPTCP limits: subflows per connection and ADD_ADDRs accepted.
        public var mptcpSubflows: Int?
        public var mptcpAddAddrAccepted: Int?
        /// Which path manager runs the host's MPTCP paths.
        public var pathManager = PathManager.kernel
        /// `pm-first-subflow=replace`: EdgePool's path manager replaces a connection's first
        /// subflow when its path is lost instead of keeping it (`paths run --first-subflow`).
        public var replacesFirstSubflow = false
        public var line: Int

        public enum PathManager: String, Hashable, Sendable {
            /// The kernel's in-kernel PM with the topology's `endpoint` lines alone.
            case kernel
            /// `edgepool paths run` in the host: an endpoint per interface address, retired
            /// when its link goes down and restored with fresh subflows when it returns.
            case edgepool
        }

        public init(name: String, line: Int) {
            self.name = name
            self.line = line
        }
    }

    /// One end of a link: a host's interface and its addresses.
    public struct Interface: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var name: String
        public var addresses: [IPNetwork]
        public var description: String { "\(host):\(name)" }
    }

    /// What a link does to traffic in one direction.
    public struct Shaping: Hashable, Sendable {
        /// Bits per second; nil: unlimited.
        public var rateBitsPerSecond: UInt64?
        public var delayMilliseconds: Double = 0
        public var jitterMilliseconds: Double = 0
        /// 0…1.
        public var loss: Double = 0
        /// Queue size in packets (the bottleneck's buffer); nil: a default of about 100 ms at the rate.
        public var queuePackets: Int?

        public init() {}

        /// Needs more than a rate limiter (tbf): delay, jitter or loss.
        public var needsDelayLine: Bool { delayMilliseconds > 0 || jitterMilliseconds > 0 || loss > 0 }
    }

    public struct Link: Hashable, Sendable {
        public var a: Interface
        public var b: Interface
        /// a → b and b → a.
        public var forward: Shaping
        public var backward: Shaping
        public var line: Int
    }

    public struct Route: Hashable, Sendable {
        public var host: String
        /// nil: the default route.
        public var destination: IPNetwork?
        public var gateway: IPAddress?
        public var device: String?
        /// Only for packets from this source address (a rule to `table`).
        public var source: IPAddress?
        public var table: Int?
        public var line: Int
    }

    public struct MPTCPEndpoint: Hashable, Sendable {
        public var host: String
        public var address: IPAddress
        public var device: String
        /// subflow, signal, backup, fullmesh.
        public var flags: [String]
        /// A port of the endpoint's own (announced with the address; the kernel listens on it
        /// for MP_JOINs, so servers that close their listener after accepting get further
        /// subflows too).
        public var port: UInt16?
        public var line: Int
    }
}

extension Topology {
    /// `path HOST:IF [probe=ADDR:PORT] [backup]`: for a `pm=edgepool` host, the path out of IF
    /// is probed toward ADDR:PORT (an ISP that fails while its line stays up is seen only so)
    /// and/or is a backup path. Interfaces without a `path` line are watched by link state.
    public struct PathOptions: Hashable, Sendable {
        public var host: String
        public var interface: String
        public var probe: (address: IPAddress, port: UInt16)?
        public var backup = false
        public var line: Int

        public static func == (a: Self, b: Self) -> Bool {
            a.host == b.host && a.interface == b.interface && a.probe?.address == b.probe?.address && a.probe?.port == b.probe?.port
                && a.backup == b.backup && a.line == b.line
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(host)
            hasher.combine(interface)
            hasher.combine(line)
        }
    }
}

/// A topology file problem: the line, and what is wrong with it.
public struct TopologyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }
    public var description: String { "line \(line): \(message)" }
}
