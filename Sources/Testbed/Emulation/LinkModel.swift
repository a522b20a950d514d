import RSerPoolCore

/// What the userspace link emulator does to each frame in one direction: drop it with the
/// loss probability, or give it the time it leaves (now + delay ± jitter). Times never go
/// backwards, so frames are not reordered (a FIFO delay line, like a wire). Pure: the time
/// is passed in, the randomness is seeded.
public struct LinkModel: Sendable {
    public var delayNanoseconds: UInt64
    public var jitterNanoseconds: UInt64
    /// 0…1.
    public var loss: Double
    private var random: SplitMix64
    private var lastDeparture: UInt64 = 0

    public init(delayNanoseconds: UInt64, jitterNanoseconds: UInt64 = 0, loss: Double = 0, seed: UInt64 = 0x5EED) {
        self.delayNanoseconds = delayNanoseconds
        self.jitterNanoseconds = jitterNanoseconds
        self.loss = loss
        random = SplitMix64(seed: seed)
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
