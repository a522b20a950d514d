import Foundation
import NIOCore
import RSerPoolCore
import RSerPoolWire

/// A point-in-time copy of a registrar's handlespace, for `edgepool handlespace`.
public struct HandlespaceSnapshot: Sendable, Codable {
    public struct Element: Sendable, Codable {
        public var identifier: String
        public var home: String
        public var transport: String
        public var policy: String
        public var registrationLifeMilliseconds: Int32
        public var ageSeconds: Double
        public var selections: UInt64
        public var unreachableReports: Int
    }
    public struct PoolInfo: Sendable, Codable {
        public var handle: String
        public var policy: String
        public var elements: [Element]
    }
    public struct PeerInfo: Sendable, Codable {
        public var identifier: String
        public var transport: String?
        public var associations: Int
        public var silentSeconds: Double
        public var state: String
    }
    public var registrar: String
    public var poolElementCount: Int
    public var pools: [PoolInfo]
    public var peers: [PeerInfo]
    /// The ownership checksum (RFC 5353 §2.1.5) of each owner's PEs as this registrar sees them.
    public var checksums: [String: UInt16]

    init(registrar: RegistrarIdentifier, handlespace: Handlespace, peers: [PeerInfo]) {
        self.peers = peers
        var owners = Set(handlespace.pools.values.flatMap { $0.elements.map(\.owner) })
        owners.insert(registrar)
        self.checksums = Dictionary(uniqueKeysWithValues: owners.map { ($0.description, handlespace.checksum(of: $0)) })
        let now = NIODeadline.now()  // snapshot ages: wall time is fine here
        self.registrar = registrar.description
        self.poolElementCount = handlespace.elementCount
        self.pools = handlespace.pools.values.sorted { $0.handle < $1.handle }.map { pool in
            PoolInfo(handle: pool.handle.description, policy: pool.policyType.description,
                     elements: pool.elements.sorted { $0.identifier < $1.identifier }.map { entry in
                         Element(identifier: entry.identifier.description, home: entry.owner.description,
                                 transport: entry.parameter.userTransport.description, policy: entry.parameter.policy.description,
                                 registrationLifeMilliseconds: entry.parameter.registrationLife,
                                 ageSeconds: Double((now - entry.registeredAt).nanoseconds) / 1e9,
                                 selections: entry.selectionCount, unreachableReports: entry.unreachableReports)
                     })
        }
    }

    /// The snapshot as `edgepool handlespace` prints it: the registrar, its peers, each pool
    /// and its PEs.
    public var report: String {
        var lines = ["registrar \(registrar): \(pools.count) pool(s), \(poolElementCount) pool element(s), \(peers.count) peer(s)"]
        for peer in peers {
            lines.append("  peer \(peer.identifier)  \(peer.transport ?? "?")  \(peer.state)  heard \(String(format: "%.1f", peer.silentSeconds)) s ago")
        }
        for pool in pools {
            lines.append("  \(pool.handle)  (\(pool.policy), \(pool.elements.count) PE)")
            for e in pool.elements {
                lines.append("    \(e.identifier)  \(e.transport)  \(e.policy)  home \(e.home)  age \(String(format: "%.0f", e.ageSeconds)) s  selected \(e.selections)×")
            }
        }
        return lines.joined(separator: "\n")
    }
}
