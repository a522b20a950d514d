import RSerPoolWire

/// The userspace path manager's decisions, without sockets: which subflows every MPTCP
/// connection of the namespace should have, from the `mptcp_pm` events (connections, the
/// peer's announced addresses, subflows) and from which paths are in use.
///
/// Every path in use gets a subflow to every address the peer has (the one the connection
/// began with, and each announced one): a path's subflow to an address its network cannot
/// reach fails at once (ENETUNREACH) and costs nothing, and the one it can reach is there —
/// which the in-kernel PM cannot do for an announced address after a path returns. A path
/// taken out of use loses its subflows on every connection; a path back in use gets fresh
/// ones (none left in retransmission back-off).
public struct UserspaceSubflowPlanner: Sendable {
    /// One of this host's paths: its local address and the address id its subflows carry.
    public struct Path: Hashable, Sendable {
        public var identifier: PathIdentifier
        public var address: IPAddress
        public var localID: UInt8

        public init(identifier: PathIdentifier, address: IPAddress, localID: UInt8) {
            self.identifier = identifier
            self.address = address
            self.localID = localID
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
    }

    public enum Action: Hashable, Sendable {
        /// SUBFLOW_CREATE on connection `token` from `local` (address id `localID`) to `remote`.
        case create(token: UInt32, local: IPAddress, localID: UInt8, remote: Remote)
        /// SUBFLOW_DESTROY.
        case destroy(token: UInt32, Subflow)
    }

    private struct Connection: Sendable {
        var remotes: [Remote] = []
        var subflows: Set<Subflow> = []
        /// The first subflow's local address: its address id is 0.
        var initialLocal: IPAddress?
    }

    public let paths: [Path]
    private var inUse: Set<PathIdentifier> = []
    private var connections: [UInt32: Connection] = [:]

    public init(paths: [Path]) {
        self.paths = paths
    }

    /// Connections known now.
    public var connectionCount: Int { connections.count }

    /// The subflows known on connection `token`.
    public func subflows(of token: UInt32) -> Set<Subflow> { connections[token]?.subflows ?? [] }

    /// A path taken into use (`true`) or out of it.
    ///
    /// Out of use, its subflows are left alone: nothing sent on a dead path arrives, not even
    /// the reset that would tell the peer, which would keep sending into its half of the
    /// subflow until its own retransmissions give up. Back in use, they are destroyed first —
    /// now the reset reaches the peer, which closes its half and sends what it held there on
    /// the other subflows at once — and fresh ones are created.
    public mutating func setInUse(_ identifier: PathIdentifier, _ used: Bool) -> [Action] {
        guard let path = paths.first(where: { $0.identifier == identifier }) else { return [] }
        guard used else {
            inUse.remove(identifier)
            return []
        }
        inUse.insert(identifier)
        var actions: [Action] = []
        for token in connections.keys.sorted() {
            let stuck = connections[token]!.subflows.filter { $0.local == path.address }.sorted(by: Self.order)
            for subflow in stuck {
                actions.append(.destroy(token: token, subflow))
                connections[token]!.subflows.remove(subflow)
            }
            actions += subflowsFrom(path, on: token)
        }
        return actions
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
            if let subflow = Self.subflow(event) { connections[token]?.subflows.insert(subflow) }
            return []
        case .subflowClosed:
            if let subflow = Self.subflow(event) { connections[token]?.subflows.remove(subflow) }
            return []
        case .closed:
            connections[token] = nil
            return []
        default:
            return []
        }
    }

    /// A new connection, from its first subflow's addresses.
    private mutating func record(_ event: MPTCPEvent, token: UInt32) {
        var connection = Connection()
        if let destination = event.destination { connection.remotes = [Remote(address: destination, port: event.destinationPort ?? 0)] }
        connection.initialLocal = event.source
        if let subflow = Self.subflow(event) { connection.subflows = [subflow] }
        connections[token] = connection
    }

    /// Subflows from `path` on connection `token` to each peer address it has none to yet.
    private func subflowsFrom(_ path: Path, on token: UInt32) -> [Action] {
        connections[token]?.remotes.compactMap { create(path, to: $0, on: token) } ?? []
    }

    private func create(_ path: Path, to remote: Remote, on token: UInt32) -> Action? {
        guard let connection = connections[token],
              !connection.subflows.contains(where: { $0.local == path.address && $0.remote == remote.address }) else { return nil }
        let id = connection.initialLocal == path.address ? 0 : path.localID
        return .create(token: token, local: path.address, localID: id, remote: remote)
    }

    private static func subflow(_ event: MPTCPEvent) -> Subflow? {
        guard let source = event.source, let destination = event.destination, let sourcePort = event.sourcePort,
              let destinationPort = event.destinationPort else { return nil }
        return Subflow(local: source, localPort: sourcePort, remote: destination, remotePort: destinationPort)
    }

    private static func order(_ a: Subflow, _ b: Subflow) -> Bool { (a.localPort, a.remotePort) < (b.localPort, b.remotePort) }
}
