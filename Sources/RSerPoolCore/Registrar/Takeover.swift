import RSerPoolWire

/// A takeover this registrar runs (RFC 5353 §3.11).
struct Takeover: Sendable {
    var target: RegistrarIdentifier
    var expected: Set<RegistrarIdentifier>
    var acknowledged: Set<RegistrarIdentifier> = []
    var generation: UInt64
}
