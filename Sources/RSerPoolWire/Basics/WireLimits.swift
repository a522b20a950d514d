/// Size limits the decoders enforce. Every limit is a named value so that an operator can see
/// what bounds memory per message, and tests can provoke each one.
public struct WireLimits: Hashable, Sendable {
    /// The largest message accepted, header included. ASAP and ENRP carry a 16-bit length,
    /// so 65,535 is the hard ceiling; a registrar may configure less.
    public var maximumMessageSize: Int
    /// The longest pool handle accepted (RFC 5354 sets none; the reference implementation uses 32).
    public var maximumPoolHandleLength: Int
    /// The most addresses a transport parameter may list (SCTP is multi-homed; TCP/UDP carry one).
    public var maximumAddressesPerTransport: Int
    /// The most Pool Element parameters one message may carry.
    public var maximumPoolElementsPerMessage: Int
    /// The most policy values (u32 each) after the policy type.
    public var maximumPolicyValues: Int

    public init(
        maximumMessageSize: Int = WireLimits.absoluteMaximumMessageSize,
        maximumPoolHandleLength: Int = WireLimits.defaultMaximumPoolHandleLength,
        maximumAddressesPerTransport: Int = 16,
        maximumPoolElementsPerMessage: Int = 2048,
        maximumPolicyValues: Int = 8
    ) {
        self.maximumMessageSize = min(maximumMessageSize, WireLimits.absoluteMaximumMessageSize)
        self.maximumPoolHandleLength = maximumPoolHandleLength
        self.maximumAddressesPerTransport = maximumAddressesPerTransport
        self.maximumPoolElementsPerMessage = maximumPoolElementsPerMessage
        self.maximumPolicyValues = maximumPolicyValues
    }

    /// The 16-bit length field's ceiling.
    public static let absoluteMaximumMessageSize = 65_535
    /// The reference implementation's pool handle limit.
    public static let defaultMaximumPoolHandleLength = 32
    /// The defaults: 64 KiB messages, 32-byte pool handles.
    public static let `default` = WireLimits()
}
