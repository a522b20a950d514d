/// What the userspace link emulator does to each frame in one direction: drop it with the
/// loss probability, or give it the time it leaves (now + delay ± jitter). Times never go
/// backwards, so frames are not reordered (a FIFO delay line, like a wire). Pure: the time
/// is passed in, the randomness is seeded.
public struct LinkModel: Sendable {
    public var delayNanoseconds: UInt64
    public var jitterNanoseconds: UInt64
    /// 0…1.
    public var loss: Double
    private var random: SplitMix64Generator
    private var lastDeparture: UInt64 = 0

    public init(delayNanoseconds: UInt64, jitterNanoseconds: UInt64 = 0, loss: Double = 0, seed: UInt64 = 0x5EED) {
        self.delayNanoseconds = delayNanoseconds
        self.jitterNanoseconds = jitterNanoseconds
        self.loss = loss
        random = SplitMix64Generator(seed: seed)
    }

    public init(_ shaping: Topology.Shaping, seed: UInt64 = 0x5EED) {
        self.init(delayNanoseconds: UInt64(shaping.delayMilliseconds * 1e6), jitterNanoseconds: UInt64(shaping.jitterMilliseconds * 1e6),
                  loss: shaping.loss, seed: seed)
    }

    /// The departure time of a frame that arrived at `now`, or nil if it is lost.
    public mutating func admit(at now: UInt64) -> UInt64? {
        if loss > 0, Double(random.next() >> 11) / Double(1 << 53) < loss { return nil }
        var departure = now + delayNanoseconds
        if jitterNanoseconds > 0 {
            // Uniform in ±jitter, not below zero delay.
            let offset = Int64(random.next() % (2 * jitterNanoseconds + 1)) - Int64(jitterNanoseconds)
            departure = UInt64(max(Int64(now), Int64(departure) + offset))
        }
        departure = max(departure, lastDeparture)
        lastDeparture = departure
        return departure
    }
}

/// SplitMix64: small, fast, seedable (the emulator's loss and jitter must be repeatable).
public struct SplitMix64Generator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
