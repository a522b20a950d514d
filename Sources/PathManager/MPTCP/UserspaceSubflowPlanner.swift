import RSerPoolWire

/// The userspace path manager's decisions, without sockets: which subflows every MPTCP
/// connection of the namespace should have, from the `mptcp_pm` events (connections, the
/// peer's announced addresses, subflows) and from which paths are in use.
///
/// Every path in use gets a subflow to every address the peer has (the one the connection
/// began with, and each announced one): a path's subflow to an address its network cannot
/// reach fails at once (ENETUNREACH) and costs nothing, and the one it can reach is there —
/// which the in-kernel PM cannot do for an announced address after a path returns. A path
/// taken out of use stops carrying data at once (see ``setInUse(_:_:)``); a path back in
/// use gets fresh subflows, and its stuck ones (in retransmission back-off) go once a fresh
/// one is established.
///
/// Backup paths (role `.backup`) get their subflows as backup subflows: the scheduler uses
/// them only while no other subflow can send. While no active path is in use they are
/// promoted (MP_PRIO without the backup bit, so the peer sends on them too), and demoted
/// again as soon as an active path is back.
public struct UserspaceSubflowPlanner: Sendable {
    /// One of this host's paths: its local address and the address id its subflows carry.
    public struct Path: Hashable, Sendable {
        public var identifier: PathIdentifier
        public var address: IPAddress
        public var localID: UInt8
        /// A backup path: its subflows are used only while no active path is in use.
        public var backup: Bool

        public init(identifier: PathIdentifier, address: IPAddress, localID: UInt8, backup: Bool = false) {
            self.identifier = identifier
            self.address = address
            self.localID = localID
            self.backup = backup
        }
    }

    /// An address of the peer: the connection's first, or announced (ADD_ADDR).
    public struct Remote: Hashable, Sendable {
        public var address: IPAddress
        /// Host order.
        public var port: UInt16

        public init(address: IPAddress, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// A subflow, by its addresses and ports (host order): what SUBFLOW_DESTROY names.
    public struct Subflow: Hashable, Sendable {
        public var local: IPAddress
        public var localPort: UInt16
        public var remote: IPAddress
        public var remotePort: UInt16

        public init(local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16) {
            self.local = local
            self.localPort = localPort
            self.remote = remote
            self.remotePort = remotePort
        }

        /// The subflow sock_diag listed.
        public init(_ found: SockDiag.Subflow) {
            self.init(local: found.localAddress, localPort: found.localPort, remote: found.remoteAddress, remotePort: found.remotePort)
        }
    }

    public enum Action: Hashable, Sendable {
        /// SUBFLOW_CREATE on connection `token` from `local` (address id `localID`) to
        /// `remote`; `backup`: as a backup subflow (MP_JOIN with the B bit).
        case create(token: UInt32, local: IPAddress, localID: UInt8, remote: Remote, backup: Bool)
        /// SUBFLOW_DESTROY.
        case destroy(token: UInt32, Subflow)
        /// SET_FLAGS on one subflow: mark it backup or not (MP_PRIO).
        case setBackup(token: UInt32, Subflow, Bool)
        /// REMOVE: the peer is told (RM_ADDR, on a subflow that still works) that local
        /// address `localID` is gone; it closes its half of those subflows and sends what it
        /// had in flight there on the others at once.
        case removeAddress(token: UInt32, localID: UInt8)
    }

    private struct Connection: Sendable {
        var remotes: [Remote] = []
        var subflows: Set<Subflow> = []
        /// The first subflow's local address: its address id is 0.
        var initialLocal: IPAddress?
        var initialSubflow: Subflow?
        /// Subflows of a returned path that wait for a fresh one from the same path before
        /// they are destroyed.
        var stuck: Set<Subflow> = []
        /// Address id 0 was removed (`.replace`): fresh subflows from the first address take
        /// the path's own id.
        var initialRemoved = false

        /// Each listed subflow's remote address counts as one of the peer's (in order, once).
        mutating func learnRemotes(from found: [SockDiag.Subflow]) {
            for subflow in found {
                let remote = Remote(address: subflow.remoteAddress, port: subflow.remotePort)
                if !remotes.contains(remote) { remotes.append(remote) }
            }
        }
    }

    public private(set) var paths: [Path]
    private var inUse: Set<PathIdentifier> = []
    private var connections: [UInt32: Connection] = [:]

    /// What happens to a connection's first subflow when its path is lost.
    public enum FirstSubflow: String, Sendable, CaseIterable {
        /// Marked backup and kept, to recover by itself: safe with every server.
        case keep
        /// Closed, and the peer told (RM_ADDR 0) at once — the sender stops feeding it without
        /// waiting for its retransmission timer; fresh subflows replace it on return. Only for
        /// servers that keep listening: one that closed its listener after accepting (ffmpeg's
        /// RTMP `-listen`) accepts no join to that address, and the path stays unused.
        case replace
    }

    public let firstSubflow: FirstSubflow

    public init(paths: [Path], firstSubflow: FirstSubflow = .keep) {
        self.paths = paths
        self.firstSubflow = firstSubflow
    }

    /// Connections known now.
    public var connectionCount: Int { connections.count }

    /// The subflows known on connection `token`.
    public func subflows(of token: UInt32) -> Set<Subflow> { connections[token]?.subflows ?? [] }

    /// A path taken into use (`true`) or out of it.
    ///
    /// **Out of use.** Subflows that joined from the path's address are destroyed on every
    /// connection and the peer is told the address is gone (RM_ADDR, carried by a subflow that
    /// works — a reset sent into the dead path would be lost), so that it stops sending into
    /// its half at once instead of waiting for its retransmission timer; they are re-created
    /// by joins when the path returns. The connection's *first* address is different: removing
    /// it (id 0) would close the first subflow, which a join may not be able to replace — a
    /// server that closed its listener after accepting (ffmpeg's RTMP `-listen`) accepts no
    /// join to that address. Its subflows are only marked backup (this host stops sending on
    /// them at once) and left to recover — unless `firstSubflow` is `.replace`.
    ///
    /// **Back in use.** Fresh subflows to every address of the peer; the stuck ones are
    /// destroyed once a fresh subflow from the path is established (make before break), and
    /// meanwhile marked active again, so that one recovering by itself is used too.
    public mutating func setInUse(_ identifier: PathIdentifier, _ used: Bool) -> [Action] {
        guard let path = paths.first(where: { $0.identifier == identifier }) else { return [] }
        let backupsWereStandingIn = backupsStandIn
        guard used else {
            guard inUse.remove(identifier) != nil else { return [] }
            var actions: [Action] = []
            for token in connections.keys.sorted() {
                actions += retire(path, on: token)
            }
            // The backups take over when the last active path is gone.
            if backupsStandIn && !backupsWereStandingIn { actions += paths.filter { $0.backup && inUse.contains($0.identifier) }.flatMap { mark($0, backup: false) } }
            return actions
        }
        inUse.insert(identifier)
        var actions: [Action] = []
        // An active path is back: the backups that stood in go back to standing by.
        if backupsWereStandingIn && !backupsStandIn {
            actions += paths.filter { $0.backup && $0.identifier != identifier && inUse.contains($0.identifier) }.flatMap { mark($0, backup: true) }
        }
        for token in connections.keys.sorted() {
            let stuck = connections[token]!.subflows.filter { $0.local == path.address }.sorted(by: Self.order)
            connections[token]!.stuck = Set(stuck)
            actions += stuck.map { .setBackup(token: token, $0, createsAsBackup(path)) }
            actions += subflowsFrom(path, on: token)
        }
        return actions
    }

    /// The path's interface was renumbered: its old address is gone for good, so every
    /// subflow still from it goes now — the first subflow too, whatever ``firstSubflow`` says
    /// (keeping it is for a path that comes back; this address will not) — and the peer is
    /// told (RM_ADDR). From then on the path's subflows come from `address`; a path in use
    /// gets them at once, one out of use when it is restored.
    public mutating func renumber(_ identifier: PathIdentifier, to address: IPAddress) -> [Action] {
        guard let index = paths.firstIndex(where: { $0.identifier == identifier }), paths[index].address != address else { return [] }
        let old = paths[index]
        var actions: [Action] = []
        for token in connections.keys.sorted() {
            guard var connection = connections[token] else { continue }
            let gone = connection.subflows.filter { $0.local == old.address }.sorted(by: Self.order)
            let firstAddress = connection.initialLocal == old.address && !connection.initialRemoved
            if firstAddress {
                // The first subflow before the RM_ADDR of id 0 (see `retire`).
                actions += gone.map { .destroy(token: token, $0) }
                actions.append(.removeAddress(token: token, localID: 0))
                connection.initialRemoved = true
            } else if !gone.isEmpty {
                actions.append(.removeAddress(token: token, localID: old.localID))
                actions += gone.map { .destroy(token: token, $0) }
            }
            connection.subflows.subtract(gone)
            connection.stuck.subtract(gone)
            connections[token] = connection
        }
        paths[index].address = address
        if inUse.contains(identifier) {
            for token in connections.keys.sorted() { actions += subflowsFrom(paths[index], on: token) }
        }
        return actions
    }

    /// Retires `path` on connection `token` (see ``setInUse(_:_:)``).
    private mutating func retire(_ path: Path, on token: UInt32) -> [Action] {
        guard var connection = connections[token] else { return [] }
        let lost = connection.subflows.filter { $0.local == path.address }.sorted(by: Self.order)
        guard !lost.isEmpty else { return [] }
        connection.stuck.subtract(lost)
        let firstAddress = connection.initialLocal == path.address && !connection.initialRemoved
        if firstAddress && firstSubflow == .keep {
            connections[token] = connection
            return lost.map { .setBackup(token: token, $0, true) }
        }
        // The first subflow goes before the RM_ADDR of id 0 (else the kernel may pick that dead
        // subflow to carry it), the others after theirs (the kernel forgets an address whose
        // subflows are gone).
        let first = lost.filter { $0 == connection.initialSubflow }
        var actions = first.map { Action.destroy(token: token, $0) }
        actions.append(.removeAddress(token: token, localID: firstAddress ? 0 : path.localID))
        actions += lost.filter { $0 != connection.initialSubflow }.map { Action.destroy(token: token, $0) }
        connection.subflows.subtract(lost)
        if firstAddress { connection.initialRemoved = true }
        connections[token] = connection
        return actions
    }

    /// Whether backup paths carry traffic as active ones: no active path is in use.
    private var backupsStandIn: Bool {
        !paths.contains { !$0.backup && inUse.contains($0.identifier) }
    }

    /// The backup bit a new subflow from `path` gets.
    private func createsAsBackup(_ path: Path) -> Bool { path.backup && !backupsStandIn }

    /// MP_PRIO for every subflow from `path`, on every connection.
    private func mark(_ path: Path, backup: Bool) -> [Action] {
        connections.keys.sorted().flatMap { token in
            connections[token]!.subflows.filter { $0.local == path.address }.sorted(by: Self.order).map { Action.setBackup(token: token, $0, backup) }
        }
    }

    /// An event of the namespace's MPTCP connections.
    public mutating func received(_ event: MPTCPEvent) -> [Action] {
        guard let token = event.token else { return [] }
        switch event.kind {
        case .created:
            record(event, token: token)
            return []
        case .established:
            if connections[token] == nil { record(event, token: token) }
            return paths.filter { inUse.contains($0.identifier) }.flatMap { subflowsFrom($0, on: token) }
        case .announced:
            guard connections[token] != nil, let address = event.destination else { return [] }
            let port = event.destinationPort.flatMap { $0 == 0 ? nil : $0 } ?? connections[token]!.remotes.first?.port ?? 0
            let remote = Remote(address: address, port: port)
            guard !connections[token]!.remotes.contains(remote) else { return [] }
            connections[token]!.remotes.append(remote)
            return paths.filter { inUse.contains($0.identifier) }.compactMap { create($0, to: remote, on: token) }
        case .subflowEstablished:
            guard let subflow = Self.subflow(event), var connection = connections[token] else { return [] }
            connection.subflows.insert(subflow)
            // A fresh subflow from a returned path: now its stuck ones go (make before break).
            let replaced = connection.stuck.filter { $0.local == subflow.local && $0 != subflow }.sorted(by: Self.order)
            connection.stuck.subtract(replaced)
            connection.subflows.subtract(replaced)
            connections[token] = connection
            return replaced.map { .destroy(token: token, $0) }
        case .subflowClosed:
            if let subflow = Self.subflow(event) {
                connections[token]?.subflows.remove(subflow)
                connections[token]?.stuck.remove(subflow)
            }
            return []
        case .closed:
            connections[token] = nil
            return []
        default:
            return []
        }
    }

    /// Connections that were there before this planner — a path manager restarted after it
    /// was killed finds them through sock_diag (their subflows, with local tokens and address
    /// ids): each is taken in as it is, then brought in line with the paths in use now —
    /// subflows from paths in use that it lacks are created, subflows on paths out of use are
    /// retired. Nothing that works is replaced. Connections already known (their events came
    /// first) are left alone. The peer's announced addresses that no subflow goes to are not
    /// known; each subflow's remote address counts as one of the peer's.
    public mutating func adopt(_ existing: [SockDiag.Subflow]) -> [Action] {
        var actions: [Action] = []
        for (token, subflows) in Dictionary(grouping: existing, by: \.token).sorted(by: { $0.key < $1.key }) where connections[token] == nil {
            var connection = Connection()
            let ordered = subflows.sorted { ($0.initial ? 0 : 1, $0.localPort, $0.remotePort) < ($1.initial ? 0 : 1, $1.localPort, $1.remotePort) }
            for found in ordered {
                let subflow = Subflow(found)
                connection.subflows.insert(subflow)
                if found.initial { connection.initialSubflow = subflow }
            }
            connection.learnRemotes(from: ordered)
            // Address id 0 is the connection's first address, whichever subflow carries it now.
            if let first = ordered.first(where: { $0.localID == 0 }) {
                connection.initialLocal = first.localAddress
            } else {
                connection.initialRemoved = true
            }
            connections[token] = connection
            for path in paths {
                if inUse.contains(path.identifier) {
                    actions += subflowsFrom(path, on: token)
                    actions += ordered.filter { $0.localAddress == path.address && $0.backup != createsAsBackup(path) }.map {
                        .setBackup(token: token, Subflow($0), createsAsBackup(path))
                    }
                } else {
                    actions += retire(path, on: token)
                }
            }
        }
        return actions
    }

    /// After the kernel dropped events: the connections as sock_diag shows them now. A known
    /// connection takes its subflows from what is there (one whose "subflow established" was
    /// lost is known from now on, one whose "closed" was lost is gone) and gets what it lacks
    /// from the paths in use; a known one that is no longer there is forgotten (its "closed"
    /// was lost); an unknown one is adopted (``adopt(_:)``). A join in flight is not in
    /// sock_diag yet, so it may be asked for twice.
    public mutating func resynchronize(_ existing: [SockDiag.Subflow]) -> [Action] {
        let byToken = Dictionary(grouping: existing, by: \.token)
        for token in connections.keys where byToken[token] == nil { connections[token] = nil }
        var actions: [Action] = []
        for (token, subflows) in byToken.sorted(by: { $0.key < $1.key }) {
            guard var connection = connections[token] else { continue }
            let observed = Set(subflows.map(Subflow.init))
            connection.subflows = observed
            connection.stuck.formIntersection(observed)
            connection.learnRemotes(from: subflows.sorted { ($0.localPort, $0.remotePort) < ($1.localPort, $1.remotePort) })
            connections[token] = connection
            for path in paths where inUse.contains(path.identifier) { actions += subflowsFrom(path, on: token) }
        }
        return actions + adopt(existing)
    }

    /// Forgets a connection (one the kernel says is not under the userspace PM).
    public mutating func forget(_ token: UInt32) {
        connections[token] = nil
    }

    /// A new connection, from its first subflow's addresses.
    private mutating func record(_ event: MPTCPEvent, token: UInt32) {
        var connection = Connection()
        if let destination = event.destination { connection.remotes = [Remote(address: destination, port: event.destinationPort ?? 0)] }
        connection.initialLocal = event.source
        if let subflow = Self.subflow(event) {
            connection.subflows = [subflow]
            connection.initialSubflow = subflow
        }
        connections[token] = connection
    }

    /// Subflows from `path` on connection `token` to each peer address it has none to yet.
    private func subflowsFrom(_ path: Path, on token: UInt32) -> [Action] {
        connections[token]?.remotes.compactMap { create(path, to: $0, on: token) } ?? []
    }

    private func create(_ path: Path, to remote: Remote, on token: UInt32) -> Action? {
        guard let connection = connections[token],
              !connection.subflows.subtracting(connection.stuck).contains(where: { $0.local == path.address && $0.remote == remote.address }) else { return nil }
        let id = connection.initialLocal == path.address && !connection.initialRemoved ? 0 : path.localID
        return .create(token: token, local: path.address, localID: id, remote: remote, backup: createsAsBackup(path))
    }

    private static func subflow(_ event: MPTCPEvent) -> Subflow? {
        guard let source = event.source, let destination = event.destination, let sourcePort = event.sourcePort,
              let destinationPort = event.destinationPort else { return nil }
        return Subflow(local: source, localPort: sourcePort, remote: destination, remotePort: destinationPort)
    }

    private static func order(_ a: Subflow, _ b: Subflow) -> Bool { (a.localPort, a.remotePort) < (b.localPort, b.remotePort) }
}
