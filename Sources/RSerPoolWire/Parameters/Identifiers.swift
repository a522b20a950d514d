import NIOCore

/// A pool element identifier (RFC 5354 §3.14), chosen randomly by the PE, unique in its pool.
public struct PoolElementIdentifier: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }
    public var description: String { "$" + hex8(rawValue) }

    /// A random non-zero identifier.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> Self {
        Self(UInt32.random(in: 1...UInt32.max, using: &generator))
    }
    public static func random() -> Self { var g = SystemRandomNumberGenerator(); return random(using: &g) }
}

/// A pool registrar (ENRP server) identifier (RFC 5353 §3.1): 32 bits, unique in the operation
/// scope. Zero means "not yet known" (a PE's first registration carries home PR id 0).
public struct RegistrarIdentifier: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static let unknown = Self(0)
    public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }
    public var description: String { "$" + hex8(rawValue) }

    /// A random non-zero identifier.
    public static func random() -> Self { Self(UInt32.random(in: 1...UInt32.max)) }
}

func hex8(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

extension ByteBuffer {
    public mutating func writePoolElementIdentifierParameter(_ identifier: PoolElementIdentifier) {
        writeTLV(type: ParameterType.poolElementIdentifier.rawValue) { $0.writeInteger(identifier.rawValue) }
    }
}

extension PoolElementIdentifier {
    static func decode(_ raw: RawParameter) throws(RSerPoolWireError) -> PoolElementIdentifier {
        var value = raw.value
        guard value.readableBytes == 4 else {
            throw RSerPoolWireError(.invalidValue, "PE Identifier has a \(value.readableBytes)-byte value", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        return PoolElementIdentifier(value.readInteger()!)
    }
}
