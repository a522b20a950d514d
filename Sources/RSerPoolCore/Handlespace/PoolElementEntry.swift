import NIOCore
import RSerPoolWire

/// Identifies one ASAP association (one TCP/MPTCP connection) of a registrar.
public struct AssociationID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "#\(rawValue)" }
}

/// A PE as the handlespace keeps it: what it registered, who owns it, and the monitoring state.
public struct PoolElementEntry: Sendable {
    public var parameter: PoolElementParameter
    /// The PR that owns (monitors) the PE: its home PR.
    public var owner: RegistrarIdentifier { parameter.homeRegistrar }
    /// The ASAP association the PE registered over (on its home PR only).
    public var association: AssociationID?
    public var registeredAt: NIODeadline
    public var lastUpdate: NIODeadline
    /// The registration expires here unless renewed (RFC 5352 §3.1: registration life).
    public var expiresAt: NIODeadline
    /// Endpoint Unreachable reports since the last sign of life.
    public var unreachableReports: Int = 0
    /// How often the policy selected it (statistics).
    public var selectionCount: UInt64 = 0
    /// Selections since its last load update (Least Used with Degradation).
    var selectionsSinceUpdate: UInt64 = 0

    public var identifier: PoolElementIdentifier { parameter.identifier }

    public init(parameter: PoolElementParameter, association: AssociationID?, now: NIODeadline) {
        self.parameter = parameter
        self.association = association
        self.registeredAt = now
        self.lastUpdate = now
        self.expiresAt = now + .milliseconds(Int64(max(parameter.registrationLife, 0)))
    }
}
