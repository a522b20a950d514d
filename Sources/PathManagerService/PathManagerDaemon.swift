import Foundation
import Logging
import NIOCore
import PathManager
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

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

        public init(interface: String, address: IPAddress, endpointID: UInt8, policy: PathPolicy = PathPolicy()) {
            self.interface = interface
            self.address = address
            self.endpointID = endpointID
            self.policy = policy
        }

        public var identifier: PathIdentifier { PathIdentifier(interface) }

        /// `IF=ADDR[,backup][,noprobe][,id=N][,port=P][,signal]`, the `--path` form; `endpointID`
        /// unless the text says `id=`.
        public init(parsing text: String, endpointID: UInt8) throws(PathManagerError) {
            let parts = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let first = parts.first, let equals = first.firstIndex(of: "="), equals != first.startIndex,
                  let address = IPAddress(String(first[first.index(after: equals)...])) else {
                throw PathManagerError("a path is IF=ADDR[,options], got '\(text)'")
            }
            self.init(interface: String(first[..<equals]), address: address, endpointID: endpointID)
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
                case let text where text.hasPrefix("port="):
                    guard let port = UInt16(text.dropFirst(5)) else { throw PathManagerError("port= wants 0–65535 in '\(text)'") }
                    endpointPort = port
                default: throw PathManagerError("unknown path option '\(option)' (backup, noprobe, fullmesh, id=N, port=P, signal)")
                }
            }
        }

        var endpoint: MPTCPPathManager.Endpoint {
            var flags: MPTCPPathManager.EndpointFlags = [.subflow]
            flags.formUnion(extraFlags)
            if policy.role == .backup { flags.insert(.backup) }
            return MPTCPPathManager.Endpoint(id: endpointID, address: address, port: endpointPort, flags: flags,
                                             interfaceIndex: Int32(if_nametoindex(interface)))
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
        if paths.contains(where: { $0.policy.probed }) && probeTarget == nil { throw PathManagerError("probed paths need a probe target") }
        guard probeTimeout > .zero, probeInterval > .zero else { throw PathManagerError("the probe interval and timeout must be positive") }
    }
}

public struct PathManagerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// EdgePool's path manager for one network namespace, over the in-kernel PM: it watches each
/// path's link (rtnetlink) and, with active probes, the path beyond it; a lost path's
/// endpoint is deleted at once (its subflows close on every connection: nothing is sent into
/// a dead path any more), and re-added once the path has held good (fresh subflows on every
/// connection: none left in retransmission back-off). The decisions are `PathHealthMonitor`'s.
public final class PathManagerDaemon {
    public let configuration: PathManagerConfiguration
    private let logger: Logger
    private let kernel: KernelPathManager
    private let links: NetlinkSocket
    private var monitor: PathHealthMonitor
    private var linkUp: [PathIdentifier: Bool] = [:]
    private var probes: [PathIdentifier: PathProbe] = [:]
    private var nextProbe: [PathIdentifier: NIODeadline] = [:]
    /// Each path's configured routes (per-source tables…), as they were at start: the kernel
    /// deletes IPv4 routes through a link that goes down, and nothing puts them back.
    private var routes: [PathIdentifier: [RouteNetlink.Route]] = [:]
    /// Retirements and restorations carried out, per path.
    public private(set) var retired: [PathIdentifier: Int] = [:]
    public private(set) var restored: [PathIdentifier: Int] = [:]
    private let metrics: PathManagerMetrics
    /// Userspace PM: the connections' subflows, and the socket their events come on.
    private var planner: UserspaceSubflowPlanner
    private var events: NetlinkSocket?
    public private(set) var subflowsCreated = 0
    public private(set) var subflowsDestroyed = 0
    /// Subflows to create once the stuck ones they replace are gone (a join sent right after
    /// the reset of the subflow it replaces was, in the testbed, often not used by the peer).
    private var deferredCreates: [(due: NIODeadline, action: UserspaceSubflowPlanner.Action)] = []
    /// How long after destroying a path's stuck subflows its fresh ones are created.
    static let replacementDelay = TimeAmount.milliseconds(100)
    static let pmTypePath = "/proc/sys/net/mptcp/pm_type"

    public init(configuration: PathManagerConfiguration, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        kernel = try KernelPathManager()
        links = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol, groups: RouteNetlink.linkGroup, timeout: .milliseconds(5))
        monitor = PathHealthMonitor(configuration: configuration.health)
        metrics = PathManagerMetrics(paths: configuration.paths.map(\.identifier))
        planner = UserspaceSubflowPlanner(paths: configuration.paths.map {
            UserspaceSubflowPlanner.Path(identifier: $0.identifier, address: $0.address, localID: $0.endpointID)
        })
    }

    private func path(_ identifier: PathIdentifier) -> PathManagerConfiguration.Path? {
        configuration.paths.first { $0.identifier == identifier }
    }

    /// Takes the paths over: removes endpoints with their ids or addresses, then adds the ones
    /// whose links are up. Returns a one-line summary.
    public func start() throws -> String {
        let states = try currentLinks()
        let saved = try configuredRoutes()
        for path in configuration.paths {
            let index = Int32(if_nametoindex(path.interface))
            routes[path.identifier] = saved.filter { $0.outputInterface == index }
        }
        switch configuration.kernelManager {
        case .inKernel:
            for existing in try kernel.endpoints() where configuration.paths.contains(where: { $0.endpointID == existing.id || $0.address == existing.address }) {
                try? kernel.delete(id: existing.id)
            }
        case .userspace:
            try startUserspace()
        }
        let now = NIODeadline.now()
        for path in configuration.paths {
            let up = states[path.interface] ?? false
            linkUp[path.identifier] = up
            apply(monitor.add(path.identifier, policy: path.policy, linkUp: up, now: now))
        }
        return configuration.paths.map { "\($0.interface) \($0.address) id \($0.endpointID) \($0.policy.role.rawValue)\(linkUp[$0.identifier] == true ? "" : " (down)")" }
            .joined(separator: ", ") + (configuration.kernelManager == .userspace ? " (userspace PM)" : "")
    }

    /// Switches the namespace to the userspace PM and listens to its connections' events.
    private func startUserspace() throws {
        do {
            try "1".write(toFile: Self.pmTypePath, atomically: false, encoding: .utf8)
        } catch {
            throw PathManagerError("cannot switch to the userspace PM (\(Self.pmTypePath) = 1; CAP_NET_ADMIN, kernel 5.19 or later): \(error)")
        }
        guard let group = kernel.family.multicastGroups[MPTCPPathManager.eventsGroup] else {
            throw PathManagerError("the mptcp_pm family has no '\(MPTCPPathManager.eventsGroup)' group")
        }
        let socket = try NetlinkSocket(protocol: GenericNetlink.netlinkProtocol, timeout: .milliseconds(5))
        try socket.join(group: group)
        events = socket
        logger.notice("userspace PM: subflows are created and destroyed per connection by this daemon")
    }

    private func currentLinks() throws -> [String: Bool] {
        let socket = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol)
        var states: [String: Bool] = [:]
        for message in try socket.request(RouteNetlink.dumpLinks(sequence: socket.makeSequence())) {
            if let link = try RouteNetlink.link(from: message), let name = link.name { states[name] = link.isUp }
        }
        return states
    }

    private func configuredRoutes() throws -> [RouteNetlink.Route] {
        let socket = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol)
        return try socket.request(RouteNetlink.dumpRoutes(sequence: socket.makeSequence())).compactMap { message in
            try RouteNetlink.route(from: message).flatMap { $0.isConfigured ? $0 : nil }
        }
    }

    /// Puts a returned link's routes back (before its endpoint returns: a subflow needs them).
    private func restoreRoutes(of path: PathManagerConfiguration.Path) {
        guard let saved = routes[path.identifier], !saved.isEmpty, let socket = try? NetlinkSocket(protocol: RouteNetlink.netlinkProtocol) else { return }
        var restored = 0
        for route in saved {
            do {
                _ = try socket.request(RouteNetlink.addRoute(route, sequence: socket.makeSequence()))
                restored += 1
            } catch {
                logger.notice("cannot restore a route", metadata: ["path": "\(path.interface)", "error": "\(error)"])
            }
        }
        logger.info("routes restored", metadata: ["path": "\(path.interface)", "routes": "\(restored)"])
    }

    /// Runs until `shouldStop` says so (checked at least every 20 ms), then puts every
    /// endpoint back so the kernel's own PM carries on with all paths.
    public func run(shouldStop: () -> Bool) {
        while !shouldStop() {
            step()
        }
        switch configuration.kernelManager {
        case .inKernel:
            for path in configuration.paths where monitor.health(of: path.identifier) != .up {
                try? kernel.add(path.endpoint)
            }
            logger.info("stopped; every endpoint is back for the kernel's path manager")
        case .userspace:
            try? "0".write(toFile: Self.pmTypePath, atomically: false, encoding: .utf8)
            logger.info("stopped; the namespace is back on the in-kernel PM", metadata: ["subflows_created": "\(subflowsCreated)", "subflows_destroyed": "\(subflowsDestroyed)"])
        }
    }

    /// One turn: link events, probes, timers.
    func step() {
        var wait = 20
        let now = NIODeadline.now()
        if let deadline = monitor.nextDeadline { wait = min(wait, max(0, Int((deadline - now).nanoseconds / 1_000_000))) }
        if !configuration.paths.filter(\.policy.probed).isEmpty { wait = min(wait, 5) }
        if let due = deferredCreates.map(\.due).min() { wait = min(wait, max(0, Int((due - now).nanoseconds / 1_000_000))) }
        // One wait for link changes and (userspace mode) the connections' events.
        var entries = [pollfd(fd: links.fd, events: Int16(POLLIN), revents: 0)]
        if let events { entries.append(pollfd(fd: events.fd, events: Int16(POLLIN), revents: 0)) }
        _ = poll(&entries, nfds_t(entries.count), Int32(wait))
        if entries[0].revents & Int16(POLLIN) != 0, let messages = try? links.receive() {
            for message in messages {
                do {
                    guard let link = try RouteNetlink.link(from: message), let name = link.name,
                          let path = configuration.paths.first(where: { $0.interface == name }), linkUp[path.identifier] != link.isUp else { continue }
                    linkUp[path.identifier] = link.isUp
                    logger.info("link \(link.isUp ? "up" : "down")", metadata: ["path": "\(path.interface)"])
                    if link.isUp { restoreRoutes(of: path) }
                    apply(monitor.linkChanged(path.identifier, up: link.isUp, now: .now()))
                } catch {
                    logger.notice("unreadable link message", metadata: ["error": "\(error)"])
                }
            }
        }
        if let events, entries.count > 1, entries[1].revents & Int16(POLLIN) != 0, let messages = try? events.receive() {
            for message in messages {
                guard let event = try? MPTCPEvent(message) else { continue }
                perform(planner.received(event))
            }
        }
        if !deferredCreates.isEmpty {
            let now = NIODeadline.now()
            let due = deferredCreates.filter { $0.due <= now }.map(\.action)
            deferredCreates.removeAll { $0.due <= now }
            perform(due)
        }
        if let target = configuration.probeTarget { runProbes(target) }
        apply(monitor.timerFired(now: .now()))
    }

    private func perform(_ actions: [UserspaceSubflowPlanner.Action]) {
        let replacing = actions.contains { if case .destroy = $0 { true } else { false } }
        for action in actions {
            if replacing, case .create = action {
                deferredCreates.append((.now() + Self.replacementDelay, action))
                continue
            }
            switch action {
            case .create(let token, let local, let localID, let remote):
                do {
                    _ = try kernel.socket.request(MPTCPPathManager.createSubflow(token: token, local: local, localID: localID, remote: remote.address,
                                                                                remotePort: remote.port, family: kernel.family.identifier,
                                                                                sequence: kernel.socket.makeSequence()))
                    subflowsCreated += 1
                    metrics.subflowsCreated.increment()
                    logger.debug("subflow requested", metadata: ["token": "\(token)", "local": "\(local)", "remote": "\(remote.address):\(remote.port)"])
                } catch {
                    metrics.refused.increment()
                    logger.notice("subflow not created", metadata: ["token": "\(token)", "local": "\(local)", "remote": "\(remote.address)", "error": "\(error)"])
                }
            case .destroy(let token, let subflow):
                do {
                    _ = try kernel.socket.request(MPTCPPathManager.destroySubflow(token: token, local: subflow.local, localPort: subflow.localPort,
                                                                                 remote: subflow.remote, remotePort: subflow.remotePort,
                                                                                 family: kernel.family.identifier, sequence: kernel.socket.makeSequence()))
                    subflowsDestroyed += 1
                    metrics.subflowsDestroyed.increment()
                } catch {
                    metrics.refused.increment()
                    logger.notice("subflow not destroyed", metadata: ["token": "\(token)", "local": "\(subflow.local)", "error": "\(error)"])
                }
            }
        }
    }

    private func runProbes(_ target: PathManagerConfiguration.ProbeTarget) {
        let now = NIODeadline.now()
        for path in configuration.paths where path.policy.probed {
            let id = path.identifier
            if let probe = probes[id] {
                switch probe.poll(now: now, timeout: configuration.probeTimeout) {
                case .pending: continue
                case .answered:
                    probes[id] = nil
                    apply(monitor.probed(id, answered: true, now: now))
                case .failed(let reason):
                    probes[id] = nil
                    logger.debug("probe failed", metadata: ["path": "\(path.interface)", "reason": "\(reason)"])
                    apply(monitor.probed(id, answered: false, now: now))
                }
            }
            guard nextProbe[id].map({ $0 <= now }) ?? true else { continue }
            nextProbe[id] = now + configuration.probeInterval
            if let probe = PathProbe(from: path.address, interface: path.interface, to: target.address, port: target.port, now: now) {
                probes[id] = probe
            } else {
                apply(monitor.probed(id, answered: false, now: now))   // the address is gone: no way out
            }
        }
    }

    private func apply(_ actions: [PathHealthMonitor.Action]) {
        for action in actions {
            switch action {
            case .retire(let id, let reason):
                guard let path = path(id) else { continue }
                if configuration.kernelManager == .userspace {
                    perform(planner.setInUse(id, false))
                } else {
                    do {
                        try kernel.delete(id: path.endpointID)
                    } catch {
                        logger.debug("endpoint already gone", metadata: ["path": "\(path.interface)", "error": "\(error)"])
                    }
                }
                retired[id, default: 0] += 1
                metrics.retired(id)
                logger.notice("path retired: its subflows are closed on every connection", metadata: ["path": "\(path.interface)", "reason": "\(reason)"])
            case .restore(let id, _):
                guard let path = path(id) else { continue }
                if configuration.kernelManager == .userspace {
                    perform(planner.setInUse(id, true))
                    restored[id, default: 0] += 1
                    metrics.restored(id)
                    logger.notice("path restored: fresh subflows on every connection", metadata: ["path": "\(path.interface)", "role": "\(path.policy.role.rawValue)"])
                    continue
                }
                do {
                    try kernel.add(path.endpoint)
                } catch where error.errno == EEXIST || error.errno == EBUSY {
                    try? kernel.delete(id: path.endpointID)
                    try? kernel.add(path.endpoint)
                } catch {
                    logger.error("cannot add the path's endpoint", metadata: ["path": "\(path.interface)", "error": "\(error)"])
                    continue
                }
                restored[id, default: 0] += 1
                metrics.restored(id)
                logger.notice("path restored: fresh subflows on every connection", metadata: ["path": "\(path.interface)", "role": "\(path.policy.role.rawValue)"])
            }
        }
    }
}
