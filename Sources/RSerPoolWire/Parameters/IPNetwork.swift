

/// An address prefix such as 10.0.0.0/8 or fe80::/10.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init?(address: IPAddress, prefixLength: Int) {
        let bits = if case .v4 = address { 32 } else { 128 }
        guard (0...bits).contains(prefixLength) else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// "10.0.0.0/8", "::1/128", "[fe80::]/10", or a single address (full-length prefix).
    public init?(_ text: Substring) {
        var text = text
        var length: Int?
        if let slash = text.lastIndex(of: "/") {
            guard let value = Int(text[text.index(after: slash)...]) else { return nil }
            length = value
            text = text[..<slash]
        }
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard let address = IPAddress(String(text)) else { return nil }
        let full = if case .v4 = address { 32 } else { 128 }
        self.init(address: address, prefixLength: length ?? full)
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        switch (address, candidate.unmappedIPv4) {
        case (.v4(let net), .v4(let ip)):
            guard prefixLength > 0 else { return true }
            let mask = UInt32.max << UInt32(32 - prefixLength)
            return net & mask == ip & mask
        case (.v6(let netHigh, let netLow), .v6(let high, let low)):
            let highBits = min(prefixLength, 64), lowBits = max(prefixLength - 64, 0)
            let highMask = highBits == 0 ? 0 : UInt64.max << UInt64(64 - highBits)
            let lowMask = lowBits == 0 ? 0 : UInt64.max << UInt64(64 - lowBits)
            return netHigh & highMask == high & highMask && netLow & lowMask == low & lowMask
        default:
            return false
        }
    }

    public var description: String {
        if case .v6 = address { return "[\(address)]/\(prefixLength)" }
        return "\(address)/\(prefixLength)"
    }
}

extension IPAddress {
    /// ::ffff:a.b.c.d as the IPv4 address it stands for; every other address unchanged.
    public var unmappedIPv4: IPAddress {
        if case .v6(0, let low) = self, low >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: low)) }
        return self
    }
}
