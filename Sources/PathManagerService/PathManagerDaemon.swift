import Foundation
import Logging
import NIOCore
import PathManager
import RSerPoolWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension PathManagerConfiguration.Path {
    /// The in-kernel PM endpoint this path stands for (on its interface as it is now numbered).
    var endpoint: MPTCPPathManager.Endpoint {
        var flags: MPTCPPathManager.EndpointFlags = [.subflow]
        flags.formUnion(extraFlags)
        if policy.role == .backup { flags.insert(.backup) }
        return MPTCPPathManager.Endpoint(id: endpointID, address: address, port: endpointPort, flags: flags,
                                         interfaceIndex: Int32(if_nametoindex(interface)))
    }
}

/// EdgePool's path manager for one network namespace, over the in-kernel PM: it watches each
/// path's link (rtnetlink) and, with active probes, the path beyond it; a lost path's
/// endpoint is deleted at once (its subflows close on every connection: nothing is sent into
/// a dead path any more), and re-added once the path has held good (fresh subflows on every
/// connection: none left in retransmission back-off). The decisions are `PathHealthMonitor`'s.
public final class PathManagerDaemon {
    /// The paths' addresses change as their interfaces are renumbered.
    public private(set) var configuration: PathManagerConfiguration
    private let logger: Logger
    private let kernel: KernelPathManager
    private let links: NetlinkSocket
    private var monitor: PathHealthMonitor
    private var linkUp: [PathIdentifier: Bool] = [:]
    /// Whether the path's interface has the path's address now.
    private var addressPresent: [PathIdentifier: Bool] = [:]
    /// Renumberings carried out, per path.
    public private(set) var renumbered: [PathIdentifier: Int] = [:]
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
    /// Userspace PM: connections found at start (sock_diag) and taken over — a path manager
    /// restarted after a crash picks up the ones it managed before.
    public private(set) var pickedUp = 0
    /// Times the kernel dropped MPTCP events (ENOBUFS) and the connections were re-read.
    public private(set) var eventsLost = 0
    /// Picked-up connections not yet confirmed as the userspace PM's: the first refusal of a
    /// command on one means it belongs to the in-kernel PM, and it is left to it.
    private var unconfirmed: Set<UInt32> = []
    static let pmTypePath = "/proc/sys/net/mptcp/pm_type"
    /// The MPTCP events socket's receive buffer: a connection's setup is three or four events
    /// of ~1 KiB each in the kernel's accounting, so 8 MiB holds a burst of about 2,000
    /// connections opening at once. Past that, events are lost and the connections re-read.
    static let eventBufferBytes: Int32 = 8 << 20
    /// Datagrams of MPTCP events taken per turn before links, probes and timers get theirs.
    static let eventDatagramsPerTurn = 64

    /// The latest status (for `/paths`; read from another thread).
    public let status = PathManagerStatus.Latest()
    private var stateSince: [PathIdentifier: NIODeadline] = [:]
    private var lastStatus = NIODeadline.uptimeNanoseconds(0)

    public init(configuration: PathManagerConfiguration, logger: Logger) throws {
        try configuration.validate()
        if let missing = Self.missingNetworkAdministration() { throw PathManagerError(missing) }
        self.configuration = configuration
        self.logger = logger
        kernel = try KernelPathManager()
        links = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol, groups: RouteNetlink.linkGroup | RouteNetlink.addressGroups, timeout: .milliseconds(5))
        monitor = PathHealthMonitor(configuration: configuration.health)
        metrics = PathManagerMetrics(paths: configuration.paths.map(\.identifier))
        planner = UserspaceSubflowPlanner(paths: configuration.paths.map {
            UserspaceSubflowPlanner.Path(identifier: $0.identifier, address: $0.address, localID: $0.endpointID, backup: $0.policy.role == .backup)
        }, firstSubflow: configuration.firstSubflow)
    }

    /// CAP_NET_ADMIN (bit 12 of the effective set in /proc/self/status): without it the
    /// kernel refuses every change this daemon makes — say so and what to do, instead of
    /// running and changing nothing.
    public static func missingNetworkAdministration(status: String? = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) -> String? {
        guard let line = status?.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
        guard mask & (1 << 12) == 0 else { return nil }
        return "the path manager needs CAP_NET_ADMIN, which this process does not have: without it the kernel refuses endpoint changes, "
            + "subflow creation and the userspace PM switch. Run it as root, in systemd with AmbientCapabilities=CAP_NET_ADMIN, "
            + "or give the binary the capability (setcap cap_net_admin+ep). Listing endpoints (edgepool paths endpoints) needs none."
    }

    private func path(_ identifier: PathIdentifier) -> PathManagerConfiguration.Path? {
        configuration.paths.first { $0.identifier == identifier }
    }

    /// Takes the paths over: removes endpoints with their ids or addresses, then adds the ones
    /// whose links are up. Returns a one-line summary.
    public func start() throws -> String {
        var capped: [String] = []
        do {
            for path in configuration.paths {
                guard let cap = path.rateCap else { continue }
                try PathRateCap.apply(cap, on: path.interface)
                capped.append(path.interface)
                logger.info("egress capped", metadata: ["path": "\(path.interface)", "rate": "\(cap.description)"])
            }
        } catch {
            for interface in capped { PathRateCap.remove(from: interface) }
            throw error
        }
        let states = try currentLinks()
        let addresses = try currentAddresses()
        for index in configuration.paths.indices {
            let path = configuration.paths[index]
            let own = addresses.filter { $0.interfaceIndex == Int32(if_nametoindex(path.interface)) && $0.isUsable && $0.address.isIPv4 == path.address.isIPv4 }
            if path.automatic, let found = own.first {
                configuration.paths[index].address = found.address
                _ = planner.renumber(path.identifier, to: found.address)
            }
            addressPresent[path.identifier] = own.contains { $0.address == configuration.paths[index].address }
        }
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
            apply(monitor.add(path.identifier, policy: path.policy, linkUp: up, hasAddress: addressPresent[path.identifier] ?? false, now: now))
        }
        if configuration.kernelManager == .userspace { pickUpConnections() }
        return configuration.paths.map { path in
            let state = linkUp[path.identifier] != true ? " (down)" : addressPresent[path.identifier] != true ? " (no address)" : ""
            let cap = path.rateCap.map { " capped \($0.description)" } ?? ""
            return "\(path.interface) \(path.automatic && addressPresent[path.identifier] != true ? "auto" : "\(path.address)") id \(path.endpointID) \(path.policy.role.rawValue)\(cap)\(state)"
        }
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
        socket.setReceiveBuffer(Self.eventBufferBytes)
        try socket.join(group: group)
        events = socket
        logger.notice("userspace PM: subflows are created and destroyed per connection by this daemon")
    }

    /// The namespace's MPTCP connections that have subflows from this daemon's paths, as
    /// sock_diag lists them: after a crash (`pm_type` still 1) they would otherwise stay as
    /// they are until they end — no subflow re-created, none retired. Each is adopted
    /// (``UserspaceSubflowPlanner/adopt(_:)``) and what it lacks is done now.
    private func pickUpConnections() {
        if let found = ourSubflows(orElse: "connections made before this start are not picked up") {
            let before = planner.connectionCount
            let actions = planner.adopt(found)
            pickedUp = planner.connectionCount - before
            unconfirmed = Set(found.map(\.token))
            perform(actions)
            metrics.pickedUp.increment(by: Int64(pickedUp))
            if pickedUp > 0 {
                logger.notice("picked up connections made before this start", metadata: ["connections": "\(pickedUp)", "subflows": "\(found.count)",
                                                                                          "changes": "\(actions.count)"])
            }
        }
    }

    private func currentLinks() throws -> [String: Bool] {
        let socket = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol)
        var states: [String: Bool] = [:]
        for message in try socket.request(RouteNetlink.dumpLinks(sequence: socket.makeSequence())) {
            if let link = try RouteNetlink.link(from: message), let name = link.name { states[name] = link.isUp }
        }
        return states
    }

    private func currentAddresses() throws -> [RouteNetlink.InterfaceAddress] {
        let socket = try NetlinkSocket(protocol: RouteNetlink.netlinkProtocol)
        return try socket.request(RouteNetlink.dumpAddresses(sequence: socket.makeSequence())).compactMap { try? RouteNetlink.address(from: $0) }
    }

    /// An address came to or left one of the paths' interfaces. The path's own address gone:
    /// the path is lost at once, and if the interface has another usable address of the
    /// path's family (a new lease added before the old one went), it is renumbered to it. A
    /// new usable address of that family while the path has none: renumbered to it. An
    /// address added beside one the path still has changes nothing.
    private func addressChanged(_ change: RouteNetlink.InterfaceAddress) {
        guard let index = configuration.paths.firstIndex(where: { Int32(if_nametoindex($0.interface)) == change.interfaceIndex }) else { return }
        let path = configuration.paths[index]
        let id = path.identifier
        if change.address == path.address {
            let present = change.isUsable
            guard addressPresent[id] != present else { return }
            addressPresent[id] = present
            logger.info(present ? "address back" : "address gone", metadata: ["path": "\(path.interface)", "address": "\(path.address)"])
            apply(monitor.addressChanged(id, present: present, now: .now()))
            if !present, let other = (try? currentAddresses())?.first(where: {
                $0.interfaceIndex == change.interfaceIndex && $0.isUsable && $0.address.isIPv4 == path.address.isIPv4 && $0.address != path.address
            }) {
                renumber(index, to: other.address)
            }
            return
        }
        guard change.isUsable, addressPresent[id] != true, change.address.isIPv4 == path.address.isIPv4 else { return }
        renumber(index, to: change.address)
    }

    /// The path takes `address`: the old one's subflows go on every connection (RM_ADDR tells
    /// the peer), its routes are put back (removing an interface's last address removes the
    /// routes through it), and it returns through the hold like a link, with fresh subflows
    /// from the new address.
    private func renumber(_ index: Int, to address: IPAddress) {
        let path = configuration.paths[index]
        let id = path.identifier
        configuration.paths[index].address = address
        addressPresent[id] = true
        renumbered[id, default: 0] += 1
        metrics.renumbered(id)
        logger.notice("path renumbered: subflows from the old address closed, new ones will come from the new address",
                      metadata: ["path": "\(path.interface)", "old": "\(path.address)", "new": "\(address)"])
        // In-kernel mode the old address's endpoint went with the retirement (a path is renumbered
        // only while it has no address); the restore adds the new one.
        if configuration.kernelManager == .userspace { perform(planner.renumber(id, to: address)) }
        restoreRoutes(of: configuration.paths[index])
        apply(monitor.addressChanged(id, present: true, now: .now()))
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
        for path in configuration.paths where path.rateCap != nil { PathRateCap.remove(from: path.interface) }
        switch configuration.kernelManager {
        case .inKernel:
            for path in configuration.paths where monitor.health(of: path.identifier) != .up && addressPresent[path.identifier] == true {
                try? kernel.add(path.endpoint)
            }
            logger.info("stopped; every endpoint is back for the kernel's path manager")
        case .userspace:
            try? "0".write(toFile: Self.pmTypePath, atomically: false, encoding: .utf8)
            logger.info("stopped; the namespace is back on the in-kernel PM", metadata: ["subflows_created": "\(subflowsCreated)", "subflows_destroyed": "\(subflowsDestroyed)"])
        }
    }

    /// Publishes the paths' states (at most every 200 ms, and after every change).
    private func publishStatus(now: NIODeadline, force: Bool = false) {
        guard force || now - lastStatus >= .milliseconds(200) else { return }
        lastStatus = now
        let paths = configuration.paths.map { path -> PathManagerStatus.Path in
            let health = monitor.health(of: path.identifier)
            let (state, reason): (String, String?) = switch health {
            case .up: ("in use", nil)
            case .down(_, let reason): ("down", reason)
            case .returning: ("returning", nil)
            case nil: ("unknown", nil)
            }
            let since = stateSince[path.identifier] ?? now
            return PathManagerStatus.Path(name: path.interface, address: "\(path.address)", role: path.policy.role.rawValue, state: state, reason: reason,
                                          seconds: Double((now - since).nanoseconds) / 1e9,
                                          retirements: retired[path.identifier] ?? 0, restorations: restored[path.identifier] ?? 0,
                                          renumberings: renumbered[path.identifier] ?? 0, rateCap: path.rateCap?.description)
        }
        let snapshot = PathManagerStatus(mode: configuration.kernelManager == .userspace ? "userspace PM" : "in-kernel PM", paths: paths,
                                         connections: planner.connectionCount, subflowsCreated: subflowsCreated, subflowsDestroyed: subflowsDestroyed)
        status.set(snapshot)
    }

    /// One turn: link events, probes, timers. It sleeps in one poll on the link socket, the
    /// connections' events (userspace mode) and the probes in flight, until the next probe or
    /// timer is due — at most 20 ms (the stop flag and the watchdog are looked at between).
    func step() {
        let now = NIODeadline.now()
        var wait = Int64(20)
        func until(_ deadline: NIODeadline) { wait = min(wait, max(0, (deadline - now).nanoseconds / 1_000_000 + 1)) }
        if let deadline = monitor.nextDeadline { until(deadline) }
        var entries = [pollfd(fd: links.fd, events: Int16(POLLIN), revents: 0)]
        if let events { entries.append(pollfd(fd: events.fd, events: Int16(POLLIN), revents: 0)) }
        for path in configuration.paths where path.policy.probed {
            if let probe = probes[path.identifier] {
                if probe.answeredAtOnce { wait = 0 }
                entries.append(pollfd(fd: probe.fd, events: Int16(POLLOUT), revents: 0))
                until(probe.started + configuration.probeTimeout)
            } else {
                until(nextProbe[path.identifier] ?? now)
            }
        }
        _ = poll(&entries, nfds_t(entries.count), Int32(wait))
        if entries[0].revents & Int16(POLLIN) != 0, let messages = try? links.receive() {
            for message in messages {
                do {
                    if let address = try RouteNetlink.address(from: message) {
                        addressChanged(address)
                        continue
                    }
                    guard let link = try RouteNetlink.link(from: message), let name = link.name,
                          let path = configuration.paths.first(where: { $0.interface == name }), linkUp[path.identifier] != link.isUp else { continue }
                    linkUp[path.identifier] = link.isUp
                    logger.info("link \(link.isUp ? "up" : "down")", metadata: ["path": "\(path.interface)"])
                    if link.isUp { restoreRoutes(of: path) }
                    apply(monitor.linkChanged(path.identifier, up: link.isUp, now: .now()))
                } catch {
                    logger.notice("unreadable link or address message", metadata: ["error": "\(error)"])
                }
            }
        }
        if let events, entries[1].revents & Int16(POLLIN) != 0 {
            receiveEvents(from: events)
        }
        runProbes()
        apply(monitor.timerFired(now: .now()))
        publishStatus(now: .now())
    }

    /// A command on `token` was refused: a picked-up connection that is not the userspace PM's
    /// (made under the in-kernel PM) is left to the kernel from now on.
    private func refused(_ token: UInt32) {
        guard unconfirmed.remove(token) != nil else { return }
        planner.forget(token)
        logger.info("a picked-up connection is the in-kernel PM's: left to it", metadata: ["token": "\(token)"])
    }

    /// Takes the queued MPTCP events (up to ``eventDatagramsPerTurn`` datagrams). When the
    /// kernel dropped some (ENOBUFS: the buffer overflowed in a burst), what they said is not
    /// known — a connection may lack its subflows, or be gone — so the namespace's connections
    /// are read again through sock_diag and brought in line (``UserspaceSubflowPlanner/resynchronize(_:)``).
    private func receiveEvents(from events: NetlinkSocket) {
        for _ in 0..<Self.eventDatagramsPerTurn {
            do {
                for message in try events.receive(waiting: false) {
                    guard let event = try? MPTCPEvent(message) else { continue }
                    perform(planner.received(event))
                }
            } catch where error.errno == ENOBUFS {
                eventsLost += 1
                metrics.eventsLost.increment()
                logger.warning("MPTCP events were lost (the events socket's buffer overflowed): re-reading the connections through sock_diag")
                resynchronize()
            } catch {
                return   // nothing more queued
            }
        }
    }

    /// The subflows (sock_diag) of every MPTCP connection with at least one from this daemon's
    /// paths; nil, with a warning saying what is then not done, when they cannot be listed.
    private func ourSubflows(orElse consequence: String) -> [SockDiag.Subflow]? {
        switch SockDiagDump.allSubflows() {
        case .failure(let failure):
            logger.warning("cannot list the namespace's MPTCP subflows (sock_diag): \(consequence)", metadata: ["error": "\(failure)"])
            return nil
        case .success(let subflows):
            let addresses = Set(configuration.paths.map(\.address))
            let ours = Set(subflows.filter { addresses.contains($0.localAddress) }.map(\.token))
            return subflows.filter { ours.contains($0.token) }
        }
    }

    /// Reads every MPTCP subflow of the namespace and brings the planner in line with it.
    private func resynchronize() {
        if let subflows = ourSubflows(orElse: "connections whose events were lost stay as they are") {
            let actions = planner.resynchronize(subflows)
            logger.notice("connections re-read", metadata: ["connections": "\(planner.connectionCount)", "changes": "\(actions.count)"])
            perform(actions)
        }
    }

    private func perform(_ actions: [UserspaceSubflowPlanner.Action]) {
        for action in actions {
            switch action {
            case .create(let token, let local, let localID, let remote, let backup):
                do {
                    _ = try kernel.socket.request(MPTCPPathManager.createSubflow(token: token, local: local, localID: localID, remote: remote.address,
                                                                                remotePort: remote.port, backup: backup, family: kernel.family.identifier,
                                                                                sequence: kernel.socket.makeSequence()))
                    subflowsCreated += 1
                    unconfirmed.remove(token)
                    metrics.subflowsCreated.increment()
                    logger.debug("subflow requested", metadata: ["token": "\(token)", "local": "\(local)", "remote": "\(remote.address):\(remote.port)"])
                } catch {
                    metrics.refused.increment()
                    logger.notice("subflow not created", metadata: ["token": "\(token)", "local": "\(local)", "remote": "\(remote.address)", "error": "\(error)"])
                    if error.errno == EINVAL { refused(token) }
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
                    if error.errno == EINVAL { refused(token) }
                }
            case .removeAddress(let token, let localID):
                do {
                    _ = try kernel.socket.request(MPTCPPathManager.removeAddress(token: token, localID: localID, family: kernel.family.identifier,
                                                                                sequence: kernel.socket.makeSequence()))
                    metrics.addressesRemoved.increment()
                } catch {
                    // The kernel forgets an address once its subflows are gone: nothing to tell.
                    logger.debug("address not removed", metadata: ["token": "\(token)", "id": "\(localID)", "error": "\(error)"])
                }
            case .setBackup(let token, let subflow, let backup):
                do {
                    _ = try kernel.socket.request(MPTCPPathManager.setSubflowBackup(token: token, local: subflow.local, localPort: subflow.localPort,
                                                                                   remote: subflow.remote, remotePort: subflow.remotePort, backup,
                                                                                   family: kernel.family.identifier, sequence: kernel.socket.makeSequence()))
                    metrics.priorityChanges.increment()
                    logger.debug("subflow priority set", metadata: ["token": "\(token)", "local": "\(subflow.local):\(subflow.localPort)", "backup": "\(backup)"])
                } catch {
                    metrics.refused.increment()
                    logger.notice("subflow priority not set", metadata: ["token": "\(token)", "local": "\(subflow.local)", "error": "\(error)"])
                    if error.errno == EINVAL { refused(token) }
                }
            }
        }
    }

    private func runProbes() {
        let now = NIODeadline.now()
        for path in configuration.paths where path.policy.probed {
            guard let target = path.probeTarget ?? configuration.probeTarget else { continue }
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
        let now = NIODeadline.now()
        for action in actions {
            switch action {
            case .retire(let id, _), .restore(let id, _): stateSince[id] = now
            }
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
                logger.notice(configuration.kernelManager == .userspace ? "path retired: its subflows are closed on every connection and the peer is told"
                                                                         : "path retired: its subflows are closed on every connection",
                              metadata: ["path": "\(path.interface)", "reason": "\(reason)"])
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
