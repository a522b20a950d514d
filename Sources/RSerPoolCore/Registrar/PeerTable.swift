import NIOCore
import RSerPoolWire

/// A peer registrar as this one knows it (RFC 5353 §3.2: the peer list).
struct Peer: Sendable {
    var identifier: RegistrarIdentifier
    /// Where it listens for ENRP, from its Presence or a List Response.
    var server: ServerInformation?
    /// ENRP associations to it, the preferred one first.
    var associations: [AssociationID] = []
    var lastHeard: NIODeadline
    /// Set while a Presence with "reply required" is unanswered.
    var awaitingReplySince: NIODeadline?
    /// Invalidates stale peer-check timers.
    var generation: UInt64 = 0
    /// A Handle Table download in progress from this peer.
    var download: HandleTableDownload?
    var lastResyncRequest: NIODeadline?
    /// Pages still to send to this peer, one per Handle Table Request.
    var pendingPages: [[HandleTableEntry]] = []
}

/// The peers by identifier, and ENRP associations not yet identified.
struct PeerTable: Sendable {
    private(set) var peers: [RegistrarIdentifier: Peer] = [:]
    private(set) var peerOfAssociation: [AssociationID: RegistrarIdentifier] = [:]
    var unidentified: Set<AssociationID> = []

    subscript(_ id: RegistrarIdentifier) -> Peer? {
        get { peers[id] }
        set { peers[id] = newValue }
    }

    var identifiers: [RegistrarIdentifier] { peers.keys.sorted() }

    mutating func bind(_ association: AssociationID, to id: RegistrarIdentifier, now: NIODeadline) {
        unidentified.remove(association)
        peerOfAssociation[association] = id
        if peers[id] == nil { peers[id] = Peer(identifier: id, lastHeard: now) }
        if !peers[id]!.associations.contains(association) { peers[id]!.associations.append(association) }
    }

    /// Forgets an association; returns the peer it belonged to.
    @discardableResult
    mutating func unbind(_ association: AssociationID) -> RegistrarIdentifier? {
        unidentified.remove(association)
        guard let id = peerOfAssociation.removeValue(forKey: association) else { return nil }
        peers[id]?.associations.removeAll { $0 == association }
        return id
    }

    mutating func remove(_ id: RegistrarIdentifier) {
        if let peer = peers.removeValue(forKey: id) {
            for association in peer.associations { peerOfAssociation[association] = nil }
        }
    }

    func association(of id: RegistrarIdentifier) -> AssociationID? { peers[id]?.associations.first }
    func peer(of association: AssociationID) -> RegistrarIdentifier? { peerOfAssociation[association] }
    func isPeerAssociation(_ association: AssociationID) -> Bool {
        peerOfAssociation[association] != nil || unidentified.contains(association)
    }
}
