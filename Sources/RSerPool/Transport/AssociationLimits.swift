import NIOCore

/// What one association (a PE's, a PU's, a peer registrar's) may cost a registrar: bytes held
/// each way, work per event-loop turn and per second, and how long it may stall. Every bound a
/// misbehaving client could push on has a name here.
public struct AssociationLimits: Sendable, Hashable {
    /// Replies queued toward a peer before the registrar stops reading from it (the write
    /// buffer's high-water mark; reading resumes under `writeBufferLow`). A peer that never
    /// reads holds at most this plus the replies to one message.
    public var writeBufferHigh = 256 * 1024
    public var writeBufferLow = 64 * 1024
    /// The kernel's socket buffers for an association (SO_SNDBUF, SO_RCVBUF; the kernel doubles
    /// them). Pinned, not autotuned: autotuning lets one connection hold megabytes of kernel
    /// memory each way, and would absorb a non-reading peer's replies for many seconds before
    /// the write buffer above fills. ASAP and ENRP messages are small; 128 KiB carries tens of
    /// thousands of them a second even across a 100 ms round trip.
    public var socketSendBuffer = 128 * 1024
    public var socketReceiveBuffer = 128 * 1024
    /// A peer whose replies stay unsent this long (it does not read) is closed.
    public var notReadingTimeout: TimeAmount = .seconds(30)
    /// A message started and not finished within this time closes the association (a 3-byte
    /// header, or a 65,535-byte length followed by silence, is not held forever).
    public var partialMessageTimeout: TimeAmount = .seconds(10)
    /// An association that sends nothing this long and has no PE registered over it is closed.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// Messages handled from one association before the others get their turn, and the reply
    /// bytes after which its turn ends sooner (a resolution of a large pool is much more work
    /// than a keep-alive ack).
    public var messagesPerTurn = 32
    public var replyBytesPerTurn = 64 * 1024
    /// Work units per second handled from one association (0: no limit), after a burst of
    /// `messageBurst`. A message costs one unit plus one per `replyBytesPerUnit` of its replies,
    /// so a flood of large answers is held to its share of the work, not of the messages. Past
    /// it the registrar simply reads more slowly (TCP backpressure): nothing is dropped.
    public var messageRate = 1_000.0
    public var messageBurst = 1_000.0
    public var replyBytesPerUnit = 1024
    /// Associations open at once, and from one address; more are closed at accept.
    public var maximumAssociations = 10_000
    public var maximumAssociationsPerAddress = 1_000
    /// TLS handshakes under way at once (ASAP and ENRP listeners together); a connection
    /// accepted while this many are unfinished is closed at once. Each handshake costs a
    /// signature and key exchange on the registrar's one event loop, and a stalled one is held
    /// until the handshake timeout: without this bound, clients that connect and stall (or
    /// start handshakes faster than they complete) could hold every association slot and the
    /// loop's time. 256 is far above what PEs and PUs need (a handshake takes about 1 ms here).
    public var maximumConcurrentHandshakes = 256

    public init() {}

    /// The limits for a peer registrar's ENRP association: ten times the work budget (a
    /// Handle Table download of 100,000 PEs is about 9,000 units), the rest the same.
    public var forPeers: AssociationLimits {
        var peers = self
        if peers.messageRate > 0 {
            peers.messageRate *= 10
            peers.messageBurst = max(peers.messageBurst * 10, 100_000)
        }
        return peers
    }

    /// Checks the values; the description of the first bad one.
    public func validate() throws(AssociationLimitsError) {
        if writeBufferLow < 1024 || writeBufferHigh < writeBufferLow { throw AssociationLimitsError("the write buffer bounds need 1024 ≤ low ≤ high") }
        if messagesPerTurn < 1 || replyBytesPerTurn < 1 || replyBytesPerUnit < 1 { throw AssociationLimitsError("messages per turn and the byte units must be at least 1") }
        if messageRate < 0 || (messageRate > 0 && messageBurst < 1) { throw AssociationLimitsError("the message rate must be 0 (off) or positive with a burst ≥ 1") }
        if maximumAssociations < 1 || maximumAssociationsPerAddress < 1 || maximumConcurrentHandshakes < 1 {
            throw AssociationLimitsError("association and handshake limits must be at least 1")
        }
        for (name, value) in [("not-reading", notReadingTimeout), ("partial-message", partialMessageTimeout), ("idle", idleTimeout)] where value <= .zero {
            throw AssociationLimitsError("the \(name) timeout must be positive")
        }
    }
}

public struct AssociationLimitsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
