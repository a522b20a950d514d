import RSerPoolWire

/// A Handle Table download: resynchronising a peer's own PEs (W set) or the whole handlespace
/// from a mentor (W clear).
struct HandleTableDownload: Sendable {
    var ownChildrenOnly: Bool
    var seen: Set<ElementKey> = []
    var pages = 0
}

/// A PE's key in the handlespace.
struct ElementKey: Hashable, Sendable {
    var handle: PoolHandle
    var identifier: PoolElementIdentifier
}
