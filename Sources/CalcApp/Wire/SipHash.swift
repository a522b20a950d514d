/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudo-random function with a 128-bit
/// key and a 64-bit output, used here as the MAC that protects CalcApp cookies.
public struct SipHash24: Sendable {
    public let key0: UInt64
    public let key1: UInt64

    public init(key0: UInt64, key1: UInt64) {
        self.key0 = key0
        self.key1 = key1
    }

    /// A key from 16 bytes (little-endian words, as in the reference description).
    public init(key bytes: [UInt8]) {
        precondition(bytes.count == 16, "SipHash keys are 16 bytes")
        func word(_ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) } }
        self.init(key0: word(0), key1: word(8))
    }

    public func hash(_ message: [UInt8]) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ key0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ key1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ key0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ key1

        func round() {
            v0 = v0 &+ v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0; v0 = (v0 << 32) | (v0 >> 32)
            v2 = v2 &+ v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2
            v0 = v0 &+ v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0
            v2 = v2 &+ v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2; v2 = (v2 << 32) | (v2 >> 32)
        }

        let fullWords = message.count / 8
        for index in 0..<fullWords {
            let m = (0..<8).reduce(UInt64(0)) { $0 | UInt64(message[index * 8 + $1]) << (8 * $1) }
            v3 ^= m
            round(); round()
            v0 ^= m
        }
        var last = UInt64(message.count & 0xFF) << 56
        for (shift, byte) in message[(fullWords * 8)...].enumerated() { last |= UInt64(byte) << (8 * shift) }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}
