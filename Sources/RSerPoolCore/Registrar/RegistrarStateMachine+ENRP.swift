import NIOCore
import RSerPoolWire

/// ENRP (RFC 5353): registrars keep one handlespace. Each PE has one home registrar (its
/// owner); every registration, update and removal goes to the peers as a Handle Update;
/// Presence heartbeats carry the checksum of the sender's own PEs, and a mismatch makes the
/// receiver download that peer's PEs again; a peer that falls silent and does not answer is
/// taken over: the lower identifier wins a tie, the winner becomes home of its PEs and tells
/// each of them with an Endpoint Keep-Alive carrying the home flag.
extension RegistrarStateMachine {
    // MARK: - Setup and associations

    /// Starts ENRP: where this registrar listens for peers, and the peers to contact.
    public mutating func startPeering(enrpTransport: TransportAddress, staticPeers: [TransportAddress], now: NIODeadline) -> [Action] {
        self.enrpTransport = enrpTransport
        scheduleHeartbeat(now: now)
        return staticPeers.map { .connectPeer($0) }
    }

    /// An ENRP association (incoming or outgoing) is up: introduce ourselves and ask for a
    /// reply, which tells us who is at the other end.
    public mutating func peerAssociationEstablished(_ association: AssociationID, now: NIODeadline) -> [Action] {
        peers.unidentified.insert(association)
        return [.sendENRP(presence(to: .unknown, replyRequired: true), to: association)]
    }

    /// The peers and their state, for operators.
    public func peerStatus(now: NIODeadline) -> [(identifier: RegistrarIdentifier, server: ServerInformation?, associations: Int,
                                                  silentFor: TimeAmount, awaitingReply: Bool, takingOver: Bool)] {
        peers.identifiers.map { id in
            let peer = peers[id]!
            return (id, peer.server, peer.associations.count, now - peer.lastHeard, peer.awaitingReplySince != nil, takeovers[id] != nil)
        }
    }

    /// A Presence heard by UDP multicast (RFC 5353 §3.1): a peer we have no association with
    /// is contacted. An unspecified address in its server information stands for `source`.
    public mutating func receivedPeerAnnouncement(_ message: ENRPMessage, from source: IPAddress?, now: NIODeadline) -> [Action] {
        guard case .presence(_, var server, _) = message.body, message.sender != identifier, message.sender != .unknown else { return [] }
        if let allowed = configuration.allowedPeers, !allowed.contains(message.sender) { return [] }
        if let peer = peers[message.sender], !peer.associations.isEmpty { return [] }
        if let source { server.transport.addresses = server.transport.addresses.map { $0.isUnspecified ? source : $0 } }
        return [.connectPeer(server.transport)]
    }

    // MARK: - Messages

    /// An ENRP message arrived from a peer.
    public mutating func receivedPeer(_ message: ENRPMessage, on association: AssociationID, now: NIODeadline) -> [Action] {
        let sender = message.sender
        guard sender != identifier, sender != .unknown else {
            return [.event(.peerRefused(sender, sender == identifier ? "a message with our own identifier" : "sender identifier 0")),
                    .close(association, reason: "invalid ENRP sender \(sender)")]
        }
        if let allowed = configuration.allowedPeers, !allowed.contains(sender) {
            return [.event(.peerRefused(sender, "not in the operation scope")), .close(association, reason: "registrar \(sender) is not in the scope")]
        }
        // With TLS, a registrar identifier belongs to the identity that first claimed it: a
        // peer with another certificate claiming it is forging it (RFC 5355 §4).
        if let identity = identities[association] {
            if let owner = registrarIdentities[sender], owner != identity {
                return [.event(.peerRefused(sender, "identity '\(identity)' claims registrar \(sender), which '\(owner)' is")),
                        .close(association, reason: "forged registrar identifier \(sender)")]
            }
            registrarIdentities[sender] = identity
        }
        let isNew = peers[sender] == nil
        let firstIdentified = !peers.isPeerAssociation(association) || peers.unidentified.contains(association)
        peers.bind(association, to: sender, now: now)
        peers[sender]!.lastHeard = now
        peers[sender]!.awaitingReplySince = nil
        var actions: [Action] = []
        if isNew {
            actions.append(.event(.peerUp(sender)))
            schedulePeerCheck(sender, at: now + configuration.peerMaxTimeLastHeard)
            if mentor == nil, firstIdentified {
                mentor = sender
                // The first peer we meet is our mentor: learn its peers and the whole handlespace.
                actions.append(.sendENRP(ENRPMessage(sender: identifier, receiver: sender, .listRequest), to: association))
                actions += requestHandleTable(from: sender, ownChildrenOnly: false, now: now, force: true)
            }
        }
        if takeovers.removeValue(forKey: sender) != nil {
            actions.append(.event(.takeoverCancelled(sender, "it is alive")))
        }

        switch message.body {
        case .presence(let checksum, let server, let replyRequired):
            peers[sender]!.server = server
            if replyRequired {
                actions.append(.sendENRP(presence(to: sender, replyRequired: false), to: association))
            }
            let local = handlespace.checksum(of: sender)
            if checksum != local, peers[sender]!.download == nil {
                actions.append(.event(.checksumMismatch(sender, local: local, remote: checksum)))
                actions += requestHandleTable(from: sender, ownChildrenOnly: true, now: now, force: false)
            }
        case .handleTableRequest(let ownChildrenOnly):
            actions += serveHandleTable(to: sender, on: association, ownChildrenOnly: ownChildrenOnly)
        case .handleTableResponse(let entries, let more, let rejected):
            actions += applyHandleTable(from: sender, entries: entries, moreToSend: more, rejected: rejected, now: now)
        case .handleUpdate(let action, let handle, let element, _):
            actions += applyHandleUpdate(from: sender, action: action, handle: handle, element: element, now: now)
        case .listRequest:
            var servers = peers.identifiers.compactMap { peers[$0]?.server }
            if let enrpTransport { servers.insert(ServerInformation(identifier: identifier, transport: enrpTransport), at: 0) }
            actions.append(.sendENRP(ENRPMessage(sender: identifier, receiver: sender, .listResponse(servers: servers, rejected: false)), to: association))
        case .listResponse(let servers, _):
            for server in servers where server.identifier != identifier && server.identifier != .unknown {
                if peers[server.identifier] == nil || peers[server.identifier]!.associations.isEmpty {
                    actions.append(.connectPeer(server.transport))
                }
            }
        case .initTakeover(let target):
            actions += initTakeoverReceived(from: sender, target: target, on: association, now: now)
        case .initTakeoverAck(let target):
            if var takeover = takeovers[target] {
                takeover.acknowledged.insert(sender)
                takeovers[target] = takeover
                if takeover.expected.isSubset(of: takeover.acknowledged) { actions += completeTakeover(of: target, now: now) }
            }
        case .takeoverServer(let target):
            if isAlive(target, now: now) {
                actions.append(.event(.peerRefused(sender, "Takeover Server for \(target), which we hear from: refused")))
            } else {
                actions += takeoverServerReceived(from: sender, target: target, now: now)
            }
        case .error(let error):
            actions.append(.event(.peerReportedError(error, association)))
        }
        return actions
    }

    // MARK: - Handle tables

    private mutating func requestHandleTable(from peer: RegistrarIdentifier, ownChildrenOnly: Bool, now: NIODeadline, force: Bool) -> [Action] {
        guard let association = peers.association(of: peer), peers[peer]!.download == nil else { return [] }
        if !force, let last = peers[peer]!.lastResyncRequest, now - last < configuration.minimumResyncInterval { return [] }
        peers[peer]!.download = HandleTableDownload(ownChildrenOnly: ownChildrenOnly)
        peers[peer]!.lastResyncRequest = now
        return [.sendENRP(ENRPMessage(sender: identifier, receiver: peer, .handleTableRequest(ownChildrenOnly: ownChildrenOnly)), to: association)]
    }

    /// One page per request (RFC 5353 §3.4: the requester asks again while M is set); the
    /// pages come from a snapshot taken at the first request.
    private mutating func serveHandleTable(to peer: RegistrarIdentifier, on association: AssociationID, ownChildrenOnly: Bool) -> [Action] {
        if peers[peer]!.pendingPages.isEmpty {
            var pages: [[HandleTableEntry]] = [[]]
            var inPage = 0
            for pool in handlespace.pools.values.sorted(by: { $0.handle < $1.handle }) {
                for entry in pool.elements where !ownChildrenOnly || entry.owner == identifier {
                    if inPage == ENRPMessage.handleTableEntriesPerPage {
                        pages.append([])
                        inPage = 0
                    }
                    if pages[pages.count - 1].last?.poolHandle != pool.handle {
                        pages[pages.count - 1].append(HandleTableEntry(poolHandle: pool.handle, elements: []))
                    }
                    pages[pages.count - 1][pages[pages.count - 1].count - 1].elements.append(entry.parameter)
                    inPage += 1
                }
            }
            peers[peer]!.pendingPages = pages
        }
        let page = peers[peer]!.pendingPages.removeFirst()
        let more = !peers[peer]!.pendingPages.isEmpty
        return [.sendENRP(ENRPMessage(sender: identifier, receiver: peer, .handleTableResponse(entries: page, moreToSend: more, rejected: false)),
                          to: association)]
    }

    private mutating func applyHandleTable(from peer: RegistrarIdentifier, entries: [HandleTableEntry], moreToSend: Bool, rejected: Bool,
                                           now: NIODeadline) -> [Action] {
        guard var download = peers[peer]!.download else {
            return [.event(.handleTableAbandoned(peer, "an unrequested Handle Table Response"))]
        }
        if rejected {
            peers[peer]!.download = nil
            return [.event(.handleTableAbandoned(peer, "the peer rejected the request"))]
        }
        download.pages += 1
        var actions: [Action] = []
        for entry in entries {
            for element in entry.elements {
                if download.ownChildrenOnly, element.homeRegistrar != peer { continue }
                let key = ElementKey(handle: entry.poolHandle, identifier: element.identifier)
                if upsertForeign(entry.poolHandle, element, now: now) { download.seen.insert(key) }
            }
        }
        if moreToSend {
            guard download.pages < configuration.maximumHandleTablePages, let association = peers.association(of: peer) else {
                peers[peer]!.download = nil
                return actions + [.event(.handleTableAbandoned(peer, "more than \(configuration.maximumHandleTablePages) pages"))]
            }
            peers[peer]!.download = download
            return actions + [.sendENRP(ENRPMessage(sender: identifier, receiver: peer, .handleTableRequest(ownChildrenOnly: download.ownChildrenOnly)),
                                        to: association)]
        }
        peers[peer]!.download = nil
        var removed = 0
        if download.ownChildrenOnly {
            // What the peer no longer owns is gone.
            for key in foreignKeys(ownedBy: peer) where !download.seen.contains(key) {
                actions += removeEntry(key, reason: .notInPeerTable)
                removed += 1
            }
        }
        return actions + [.event(.resynchronised(peer, elements: download.seen.count, removed: removed))]
    }

    private mutating func applyHandleUpdate(from peer: RegistrarIdentifier, action: HandleUpdateAction, handle: PoolHandle,
                                            element: PoolElementParameter, now: NIODeadline) -> [Action] {
        let key = ElementKey(handle: handle, identifier: element.identifier)
        let existing = handlespace.entry(handle, element.identifier)
        if let existing, existing.owner == identifier, existing.association != nil {
            return []  // ours, alive and monitored: our own view wins
        }
        switch action {
        case .addPoolElement:
            var learned = element
            learned.homeRegistrar = peer
            guard upsertForeign(handle, learned, now: now) else { return [] }
            peers[peer]!.download?.seen.insert(key)
            return existing == nil ? [.event(.learned(handle, learned, from: peer))] : []
        default:
            guard let existing else { return [] }
            // Only the registrar that owns a PE may remove it (RFC 5355 §4: a peer must not
            // change another registrar's PEs).
            guard existing.owner == peer else {
                return [.event(.peerRefused(peer, "Handle Update removing \(handle)/\(element.identifier), which \(existing.owner) owns: ignored"))]
            }
            return removeEntry(key, reason: .removedByPeer)
        }
    }

    /// Adds or refreshes a peer's PE; false if it cannot be stored (limits, inconsistent pool).
    @discardableResult
    mutating func upsertForeign(_ handle: PoolHandle, _ element: PoolElementParameter, now: NIODeadline) -> Bool {
        guard element.homeRegistrar != identifier else { return false }
        if let existing = handlespace.entry(handle, element.identifier), existing.owner == identifier, existing.association != nil { return false }
        if handlespace.entry(handle, element.identifier) == nil, handlespace.elementCount >= configuration.maximumPoolElements { return false }
        if handlespace.validate(handle, element) != nil { return false }
        var life = element
        life.registrationLife = min(max(element.registrationLife, configuration.minimumRegistrationLife), configuration.maximumRegistrationLife)
        let entry = PoolElementEntry(parameter: life, association: nil, now: now)
        if let old = handlespace.entry(handle, element.identifier)?.association {
            byAssociation[old]?.remove(ElementKey(handle: handle, identifier: element.identifier))
        }
        handlespace.register(handle, entry)
        watchForeign(ElementKey(handle: handle, identifier: element.identifier), expiresAt: entry.expiresAt)
        return true
    }

    private func foreignKeys(ownedBy owner: RegistrarIdentifier) -> [ElementKey] {
        handlespace.pools.values.flatMap { pool in
            pool.elements.filter { $0.owner == owner }.map { ElementKey(handle: pool.handle, identifier: $0.identifier) }
        }
    }

    /// A Handle Update about one of our own PEs to every peer.
    func propagate(_ action: HandleUpdateAction, _ handle: PoolHandle, _ element: PoolElementParameter) -> [Action] {
        peers.identifiers.compactMap { peer in
            peers.association(of: peer).map {
                .sendENRP(ENRPMessage(sender: identifier, receiver: peer, .handleUpdate(action: action, poolHandle: handle,
                                                                                         element: element, takeoverSuggested: false)), to: $0)
            }
        }
    }

    /// A Presence from this registrar (its own PEs' checksum and where it listens).
    public func presence(to receiver: RegistrarIdentifier, replyRequired: Bool) -> ENRPMessage {
        ENRPMessage(sender: identifier, receiver: receiver, .presence(
            checksum: handlespace.checksum(of: identifier),
            server: ServerInformation(identifier: identifier, transport: enrpTransport ?? .tcp(.ipv4Any, port: 0)),
            replyRequired: replyRequired))
    }

    // MARK: - Heartbeats and failure detection

    private mutating func scheduleHeartbeat(now: NIODeadline) {
        guard !heartbeatScheduled else { return }
        heartbeatScheduled = true
        timers.schedule(.heartbeat, at: now + configuration.peerHeartbeatInterval)
    }

    mutating func heartbeat(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for peer in peers.identifiers {
            if let association = peers.association(of: peer) {
                actions.append(.sendENRP(presence(to: peer, replyRequired: false), to: association))
            }
        }
        for association in peers.unidentified.sorted(by: { $0.rawValue < $1.rawValue }) {
            actions.append(.sendENRP(presence(to: .unknown, replyRequired: true), to: association))
        }
        scheduleHeartbeat(now: now)
        return actions
    }

    private mutating func schedulePeerCheck(_ peer: RegistrarIdentifier, at deadline: NIODeadline) {
        let generation = nextGeneration()
        peers[peer]?.generation = generation
        timers.schedule(.peerCheck(peer, generation: generation), at: deadline)
    }

    mutating func checkPeer(_ peer: RegistrarIdentifier, generation: UInt64, now: NIODeadline) -> [Action] {
        guard let state = peers[peer], state.generation == generation else { return [] }
        if let since = state.awaitingReplySince {
            guard now - since >= configuration.peerMaxTimeNoResponse else {
                schedulePeerCheck(peer, at: since + configuration.peerMaxTimeNoResponse)
                return []
            }
            return startTakeover(of: peer, now: now)
        }
        guard now - state.lastHeard >= configuration.peerMaxTimeLastHeard else {
            schedulePeerCheck(peer, at: state.lastHeard + configuration.peerMaxTimeLastHeard)
            return []
        }
        peers[peer]!.awaitingReplySince = now
        schedulePeerCheck(peer, at: now + configuration.peerMaxTimeNoResponse)
        var actions: [Action] = [.event(.peerSilent(peer))]
        if let association = peers.association(of: peer) {
            actions.append(.sendENRP(presence(to: peer, replyRequired: true), to: association))
        }
        return actions
    }

    // MARK: - Takeover (RFC 5353 §3.11)

    private mutating func startTakeover(of target: RegistrarIdentifier, now: NIODeadline) -> [Action] {
        guard takeovers[target] == nil else { return [] }
        let expected = Set(peers.identifiers.filter { id in
            id != target && !(peers[id]!.associations.isEmpty) && peers[id]!.awaitingReplySince == nil
        })
        let generation = nextGeneration()
        takeovers[target] = Takeover(target: target, expected: expected, generation: generation)
        timers.schedule(.takeover(target, generation: generation), at: now + configuration.takeoverExpiry)
        var actions: [Action] = [.event(.takeoverStarted(target))]
        for peer in expected.sorted() {
            actions.append(.sendENRP(ENRPMessage(sender: identifier, receiver: peer, .initTakeover(target: target)), to: peers.association(of: peer)!))
        }
        if expected.isEmpty { actions += completeTakeover(of: target, now: now) }
        return actions
    }

    /// Whether we heard from `peer` recently and it owes us no reply: a takeover of it is forged
    /// or mistaken (a partition between the others and it), and is refused.
    func isAlive(_ peer: RegistrarIdentifier, now: NIODeadline) -> Bool {
        guard let state = peers[peer], !state.associations.isEmpty, state.awaitingReplySince == nil else { return false }
        return now - state.lastHeard < configuration.peerMaxTimeLastHeard
    }

    private mutating func initTakeoverReceived(from sender: RegistrarIdentifier, target: RegistrarIdentifier, on association: AssociationID,
                                               now: NIODeadline) -> [Action] {
        if isAlive(target, now: now) {
            return [.event(.peerRefused(sender, "Init Takeover for \(target), which we hear from: not acknowledged"))]
        }
        if target == identifier {
            // Someone thinks we are dead: a Presence says otherwise and cancels the takeover.
            return [.sendENRP(presence(to: sender, replyRequired: false), to: association), .event(.peerSilent(sender))]
        }
        if takeovers[target] != nil {
            if identifier < sender {
                return [.event(.takeoverCancelled(target, "\(sender) also takes it over; the lower identifier (ours) wins"))]
            }
            takeovers[target] = nil
            return [.event(.takeoverCancelled(target, "\(sender) takes it over; the lower identifier wins")),
                    .sendENRP(ENRPMessage(sender: identifier, receiver: sender, .initTakeoverAck(target: target)), to: association)]
        }
        return [.sendENRP(ENRPMessage(sender: identifier, receiver: sender, .initTakeoverAck(target: target)), to: association)]
    }

    mutating func takeoverExpired(_ target: RegistrarIdentifier, generation: UInt64, now: NIODeadline) -> [Action] {
        guard let takeover = takeovers[target], takeover.generation == generation else { return [] }
        // Peers that did not answer are probably gone too: go ahead.
        return completeTakeover(of: target, now: now)
    }

    private mutating func completeTakeover(of target: RegistrarIdentifier, now: NIODeadline) -> [Action] {
        takeovers[target] = nil
        var actions: [Action] = []
        for peer in peers.identifiers where peer != target {
            if let association = peers.association(of: peer) {
                actions.append(.sendENRP(ENRPMessage(sender: identifier, receiver: peer, .takeoverServer(target: target)), to: association))
            }
        }
        let keys = foreignKeys(ownedBy: target)
        for key in keys {
            guard var entry = handlespace.entry(key.handle, key.identifier) else { continue }
            entry.parameter.homeRegistrar = identifier
            entry.association = nil
            handlespace.register(key.handle, entry)
            if entry.parameter.asapTransport != nil {
                let generation = nextGeneration()
                monitor[key] = .adopting(generation: generation)
                timers.schedule(.element(key, .keepAliveTimeout, generation: generation), at: now + configuration.keepAliveTimeout * 2)
                timers.schedule(.element(key, .expiry, generation: generation), at: entry.expiresAt)
                actions.append(.adopt(key.handle, entry.parameter))
            } else {
                // No way to reach it: it stays until its registration life ends (it will
                // register with someone when it notices its registrar is gone).
                let generation = nextGeneration()
                monitor[key] = .foreign(generation: generation)
                timers.schedule(.element(key, .expiry, generation: generation), at: entry.expiresAt)
            }
        }
        peers.remove(target)
        actions.append(.event(.takeoverCompleted(target, elements: keys.count)))
        return actions
    }

    private mutating func takeoverServerReceived(from sender: RegistrarIdentifier, target: RegistrarIdentifier, now: NIODeadline) -> [Action] {
        guard target != identifier else {
            return [.event(.peerRefused(sender, "claims to have taken us over; our PEs decide by their keep-alives"))]
        }
        takeovers[target] = nil
        let keys = foreignKeys(ownedBy: target)
        for key in keys {
            guard var entry = handlespace.entry(key.handle, key.identifier) else { continue }
            entry.parameter.homeRegistrar = sender
            handlespace.register(key.handle, entry)
        }
        peers.remove(target)
        return [.event(.takenOverBy(sender, target: target, elements: keys.count))]
    }

    /// The ASAP association to a taken-over PE is up: tell it we are its home now.
    public mutating func adoptionAssociationEstablished(_ association: AssociationID, handle: PoolHandle,
                                                        identifier element: PoolElementIdentifier, now: NIODeadline) -> [Action] {
        let key = ElementKey(handle: handle, identifier: element)
        guard let state = monitor[key], case .adopting = state, let entry = handlespace.entry(handle, element), entry.owner == identifier else {
            return [.close(association, reason: "no adoption pending for \(handle)/\(element)")]
        }
        handlespace.modify(handle, element) { $0.association = association }
        byAssociation[association, default: []].insert(key)
        let generation = nextGeneration()
        monitor[key] = .awaitingAck(generation: generation)
        timers.schedule(.element(key, .keepAliveTimeout, generation: generation), at: now + configuration.keepAliveTimeout)
        timers.schedule(.element(key, .expiry, generation: generation), at: entry.expiresAt)
        return [.send(.endpointKeepAlive(ASAPEndpointKeepAlive(registrar: identifier, poolHandle: handle, identifier: element, isHome: true)),
                      to: association),
                .event(.adopted(handle, element))]
    }

    /// The taken-over PE could not be reached.
    public mutating func adoptionFailed(handle: PoolHandle, identifier element: PoolElementIdentifier) -> [Action] {
        let key = ElementKey(handle: handle, identifier: element)
        guard let state = monitor[key], case .adopting = state else { return [] }
        return removeEntry(key, reason: .adoptionFailed)
    }
}
