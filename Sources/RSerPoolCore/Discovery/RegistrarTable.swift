import NIOCore
import RSerPoolWire

/// The registrars a PE or PU knows (RFC 5352 §3.6): configured ones, and ones heard in
/// Server Announces, which are forgotten after `announceTimeout` of silence (reference
/// default 5 s). Which one to use is the caller's choice; `candidates` lists them in order.
public struct RegistrarTable: Sendable {
    /// How long an announced registrar stays known without a new announce.
    public var announceTimeout: TimeAmount
    public private(set) var staticTransports: [TransportAddress]
    private var announced: [RegistrarIdentifier: (transports: [TransportAddress], lastHeard: NIODeadline)] = [:]

    public init(static transports: [TransportAddress] = [], announceTimeout: TimeAmount = .seconds(5)) {
        self.staticTransports = transports
        self.announceTimeout = announceTimeout
    }

    /// Records a Server Announce received from `source`. An unspecified address in it (a
    /// registrar listening on 0.0.0.0) stands for the address the announce came from.
    public mutating func heard(_ announce: ASAPServerAnnounce, from source: IPAddress, now: NIODeadline) {
        var transports = announce.transports.filter { $0.kind == .tcpTransport }.map { transport in
            var copy = transport
            copy.addresses = copy.addresses.map { $0.isUnspecified ? source : $0 }
            return copy
        }
        if transports.isEmpty { transports = [] }
        announced[announce.registrar] = (transports, now)
    }

    /// Registrars heard recently, by identifier.
    public func announcedRegistrars(now: NIODeadline) -> [RegistrarIdentifier] {
        announced.filter { now - $0.value.lastHeard < announceTimeout }.keys.sorted()
    }

    /// Where to try, in order: the configured registrars, then those announced recently
    /// (ordered by identifier, so that every PE and PU prefers the same one).
    public func candidates(now: NIODeadline) -> [TransportAddress] {
        var result = staticTransports
        for id in announcedRegistrars(now: now) {
            for transport in announced[id]!.transports where !result.contains(transport) { result.append(transport) }
        }
        return result
    }

    /// Drops announced registrars that fell silent.
    public mutating func expire(now: NIODeadline) {
        announced = announced.filter { now - $0.value.lastHeard < announceTimeout }
    }
}
