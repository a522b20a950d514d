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
    /// Endpoint Unreachable reports, from this many *different* associations, after which the
    /// home PR probes the PE with a keep-alive (and drops it if the probe goes unanswered for
    /// `keepAliveTimeout`). Reports from one association count once per PE until the PE answers.
    public var maximumUnreachableReports = 3
    /// Endpoint Unreachable reports one association may send per second (burst: twice that);
    /// more are ignored and counted.
    public var maximumUnreachableReportRate = 10.0
    /// Accept transport addresses in a registration other than the address the association
    /// comes from (RFC 5355 §2.3, registration spoofing). Off: a PE may register only its own
    /// address (an unspecified address is filled in with it); a proxy PE needs this on (or, with
    /// the trust work, an authorized identity).
    public var acceptsForeignAddresses = false
    /// Which authenticated identities may register in which pools; nil: no identity checks
    /// (an unauthenticated registrar). Set, a registration from an association without an
    /// authorized identity is refused ("rejected for security reasons").
    public var poolAuthorization: PoolAuthorization?
    /// Authenticated identities that may register addresses other than their own: proxy PEs
    /// that register legacy servers (RFC 5355 §2.3).
    public var proxyIdentities: Set<String> = []
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

    // MARK: ENRP (RFC 5353), defaults from the reference implementation

    /// How often a Presence goes to every peer.
    public var peerHeartbeatInterval: TimeAmount = .milliseconds(2400)
    /// Silence after which a peer is asked for a reply (Presence with R set).
    public var peerMaxTimeLastHeard: TimeAmount = .seconds(5)
    /// How long that reply may take before the peer is taken over.
    public var peerMaxTimeNoResponse: TimeAmount = .seconds(5)
    /// How long a takeover waits for the other peers' acknowledgements.
    public var takeoverExpiry: TimeAmount = .seconds(5)
    /// The least time between two resynchronisations of one peer (checksum floods).
    public var minimumResyncInterval: TimeAmount = .seconds(1)
    /// If set, the operation scope is closed: ENRP from registrars not listed is refused.
    public var allowedPeers: Set<RegistrarIdentifier>?
    /// Handle Table Response pages accepted for one request before it is abandoned.
    public var maximumHandleTablePages: Int { maximumPoolElements / ENRPMessage.handleTableEntriesPerPage + 2 }

    public init(identifier: RegistrarIdentifier) { self.identifier = identifier }

    /// The decoder limits that follow from this configuration.
    public var wireLimits: WireLimits { WireLimits(maximumPoolHandleLength: maximumPoolHandleLength) }
}
