import NIOCore
import RSerPoolWire

/// The protocol behaviour of a registrar: identity, timers and limits. Defaults are the
/// reference implementation's (RSERPOOL-WIRE.md, "Behaviour defaults").
public struct RegistrarConfiguration: Sendable, Hashable {
    /// This registrar's identifier in the operation scope (RFC 5353 §3.1).
    public var identifier: RegistrarIdentifier
    /// How long after the last sign of life the home PR sends an Endpoint Keep-Alive.
    public var keepAliveInterval: TimeAmount = .seconds(5)
    /// How long the home PR waits for the Keep-Alive Ack before dropping the PE.
    public var keepAliveTimeout: TimeAmount = .seconds(5)
    /// Endpoint Unreachable reports after which a PE is dropped.
    public var maximumUnreachableReports = 3
    /// PEs in a handle resolution response when the PU does not ask for a number.
    public var defaultHandleResolutionItems = 3
    /// The most PEs one response carries (bounded so that it fits the 64 KiB message).
    public var maximumHandleResolutionItems = 512
    /// The longest accepted pool handle.
    public var maximumPoolHandleLength = WireLimits.defaultMaximumPoolHandleLength
    /// The most PEs in the whole handlespace (then: "lack of resources").
    public var maximumPoolElements = 1_000_000
    /// The most PEs one ASAP association may register (a flood from one peer is refused).
    public var maximumPoolElementsPerAssociation = 10_000
    /// Registration life bounds: shorter lives are raised, longer ones cut (milliseconds).
    public var minimumRegistrationLife: Int32 = 1_000
    public var maximumRegistrationLife: Int32 = 3_600_000

    public init(identifier: RegistrarIdentifier) { self.identifier = identifier }

    /// The decoder limits that follow from this configuration.
    public var wireLimits: WireLimits { WireLimits(maximumPoolHandleLength: maximumPoolHandleLength) }
}
