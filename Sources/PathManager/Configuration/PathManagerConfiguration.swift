import Foundation
import NIOCore
import RSerPoolWire

/// What the path manager manages: the local paths, how they are watched.
public struct PathManagerConfiguration: Sendable {
    /// Where a path's probes go: any address of the peer; a closed port answers with a reset
    /// and costs the peer nothing.
    public struct ProbeTarget: Hashable, Sendable {
        public var address: IPAddress
        public var port: UInt16
        public init(address: IPAddress, port: UInt16) {
            self.address = address
            self.port = port
        }

        /// `ADDR:PORT` or `[V6]:PORT`.
        public init(parsing text: String) throws(PathManagerError) {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]),
                  let address = IPAddress(String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) else {
                throw PathManagerError("a probe target is ADDR:PORT, got '\(text)'")
            }
            self.init(address: address, port: port)
        }
    }

    public struct Path: Hashable, Sendable {
        public var interface: String
        public var address: IPAddress
        /// The in-kernel PM endpoint id this path uses (1–255).
        public var endpointID: UInt8
        public var policy: PathPolicy
        /// An endpoint port of its own (`port=P`: joins accepted there), 0 for none.
        public var endpointPort: UInt16 = 0
        /// Endpoint flags besides subflow/backup (e.g. signal on a server).
        public var extraFlags: MPTCPPathManager.EndpointFlags = []
        /// Where this path's probes go (`probe=ADDR:PORT`), if not to the common target: each
        /// ISP's own address of the peer, where an ISP routes only its own addresses.
        public var probeTarget: ProbeTarget?
        /// `IF=auto` (IPv4) or `IF=auto6` (IPv6): the path's address is whichever global
        /// address of that family the interface has, found at start (`address` holds the
        /// family's unspecified address until then). Every path follows its interface when it
        /// is renumbered; an automatic one may also start without an address.
        public var automatic = false
        /// `rate=8mbit`: this path's egress capped (tbf on its interface, put there at start
        /// and removed at the end), as a metered or shared uplink wants.
        public var rateCap: TokenBucketShaping?

        public init(interface: String, address: IPAddress, endpointID: UInt8, policy: PathPolicy = PathPolicy()) {
            self.interface = interface
            self.address = address
            self.endpointID = endpointID
            self.policy = policy
        }

        public var identifier: PathIdentifier { PathIdentifier(interface) }

        /// `IF=ADDR[,backup][,noprobe][,probe=ADDR:PORT][,id=N][,port=P][,signal][,fullmesh]`, the
        /// `--path` form; `endpointID` unless the text says `id=`.
        public init(parsing text: String, endpointID: UInt8) throws(PathManagerError) {
            let parts = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let first = parts.first, let equals = first.firstIndex(of: "="), equals != first.startIndex else {
                throw PathManagerError("a path is IF=ADDR, IF=auto or IF=auto6, then options; got '\(text)'")
            }
            let value = String(first[first.index(after: equals)...])
            let automatic: IPAddress? = switch value {
            case "auto": .ipv4Any
            case "auto6": .ipv6Any
            default: nil
            }
            guard let address = automatic ?? IPAddress(value) else {
                throw PathManagerError("a path is IF=ADDR, IF=auto or IF=auto6, then options; '\(value)' is none of them in '\(text)'")
            }
            self.init(interface: String(first[..<equals]), address: address, endpointID: endpointID)
            self.automatic = automatic != nil
            for option in parts.dropFirst() {
                switch option {
                case "backup": policy.role = .backup
                case "noprobe": policy.probed = false
                case "signal": extraFlags.insert(.signal)
                // Subflows from this path to every address the peer has (announced ones too),
                // not only to the one the connection began with: what a peer behind several
                // ISPs that each route only their own addresses needs.
                case "fullmesh": extraFlags.insert(.fullmesh)
                case let text where text.hasPrefix("id="):
                    guard let id = UInt8(text.dropFirst(3)), id > 0 else { throw PathManagerError("id= wants 1–255 in '\(text)'") }
                    self.endpointID = id
                case let text where text.hasPrefix("probe="):
                    probeTarget = try ProbeTarget(parsing: String(text.dropFirst(6)))
                case let text where text.hasPrefix("rate="):
                    guard let bits = TokenBucketShaping.parseRate(String(text.dropFirst(5))) else {
                        throw PathManagerError("rate= wants a rate such as 8mbit, 512kbit or 1gbit in '\(text)'")
                    }
                    rateCap = TokenBucketShaping(bitsPerSecond: bits)
                case let text where text.hasPrefix("port="):
                    guard let port = UInt16(text.dropFirst(5)) else { throw PathManagerError("port= wants 0–65535 in '\(text)'") }
                    endpointPort = port
                default: throw PathManagerError("unknown path option '\(option)' (backup, noprobe, probe=ADDR:PORT, rate=RATE, fullmesh, id=N, port=P, signal)")
                }
            }
        }
    }

    public var paths: [Path]
    public var probeTarget: ProbeTarget?
    public var probeInterval: TimeAmount = .milliseconds(100)
    /// Longer than the slowest path's round trip.
    public var probeTimeout: TimeAmount = .milliseconds(300)
    public var health = PathHealthConfiguration()
    /// Which of the kernel's path managers carries the decisions out.
    public var kernelManager = KernelManager.inKernel
    /// Userspace PM: keep a connection's first subflow through a loss, or replace it.
    public var firstSubflow = UserspaceSubflowPlanner.FirstSubflow.keep

    public enum KernelManager: String, Sendable {
        /// Endpoints: a lost path's is deleted, a returned one's added back (the kernel opens
        /// a subflow to each connection's first address).
        case inKernel = "in-kernel"
        /// `net.mptcp.pm_type=1`: per connection, SUBFLOW_CREATE from every path in use to
        /// every address the peer has (announced ones too), SUBFLOW_DESTROY for a lost path's.
        case userspace
    }

    public init(paths: [Path], probeTarget: ProbeTarget?) {
        self.paths = paths
        self.probeTarget = probeTarget
    }

    public func validate() throws(PathManagerError) {
        guard !paths.isEmpty else { throw PathManagerError("no paths to manage") }
        if Set(paths.map(\.endpointID)).count != paths.count { throw PathManagerError("two paths share an endpoint id") }
        if Set(paths.map(\.interface)).count != paths.count { throw PathManagerError("two paths share an interface") }
        if paths.contains(where: { $0.endpointID == 0 }) { throw PathManagerError("endpoint ids are 1–255") }
        if let path = paths.first(where: { $0.policy.probed && $0.probeTarget == nil }), probeTarget == nil {
            throw PathManagerError("path \(path.interface) is probed but has no probe target: give --probe ADDR:PORT, probe=ADDR:PORT on the path, or noprobe")
        }
        guard probeTimeout > .zero, probeInterval > .zero else { throw PathManagerError("the probe interval and timeout must be positive") }
    }
}

public struct PathManagerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

