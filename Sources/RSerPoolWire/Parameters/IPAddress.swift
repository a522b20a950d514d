import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as carried in the RFC 5354 address parameters (§3.1, §3.2).
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address, network order folded into a host integer (`0x7F000001` is 127.0.0.1).
    case v4(UInt32)
    /// An IPv6 address as its high and low 64 bits.
    case v6(UInt64, UInt64)

    /// Parses a textual address ("127.0.0.1", "::1"); nil if it is neither.
    public init?(_ text: String) {
        // inet_pton reads a C string: "127.0.0.1\0evil.example" would parse as 127.0.0.1.
        // Only the characters of an address literal get that far.
        guard !text.isEmpty, text.utf8.count <= 45, text.utf8.allSatisfy({ byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"),
                 UInt8(ascii: "."), UInt8(ascii: ":"): true
            default: false
            }
        }) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            self.init(bytes: bytes)
            return
        }
        return nil
    }

    /// An address from its 4 or 16 network-order bytes.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(high, low)
        default:
            return nil
        }
    }

    public static let ipv4Loopback = IPAddress.v4(0x7F00_0001)
    public static let ipv6Loopback = IPAddress.v6(0, 1)
    public static let ipv4Any = IPAddress.v4(0)
    public static let ipv6Any = IPAddress.v6(0, 0)

    /// The network-order bytes.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): return withUnsafeBytes(of: a.bigEndian) { Array($0) }
        case .v6(let h, let l): return withUnsafeBytes(of: h.bigEndian) { Array($0) } + withUnsafeBytes(of: l.bigEndian) { Array($0) }
        }
    }

    public var isIPv6: Bool { if case .v6 = self { true } else { false } }

    /// Whether this is the unspecified address (0.0.0.0 or ::), which a PE may register to mean
    /// "the address my registration came from".
    public var isUnspecified: Bool { self == .ipv4Any || self == .ipv6Any }

    /// 127.0.0.0/8 or ::1 (an IPv4-mapped loopback counts).
    /// An IPv4 address (v4-mapped IPv6 ones are IPv6 here).
    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    public var isLoopback: Bool {
        switch unmappedIPv4 {
        case .v4(let value): value >> 24 == 127
        case .v6(let high, let low): high == 0 && low == 1
        }
    }

    public var description: String {
        var storage = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var raw = bytes
        let family = isIPv6 ? AF_INET6 : AF_INET
        let ok = raw.withUnsafeMutableBytes { src in
            storage.withUnsafeMutableBufferPointer { dst in
                inet_ntop(family, src.baseAddress, dst.baseAddress, socklen_t(dst.count)) != nil
            }
        }
        guard ok else { return "?" }
        return String(decoding: storage.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address of a NIO socket address, if it is IPv4 or IPv6.
    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let a): self = .v4(UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            var raw = a.address.sin6_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.init(bytes: bytes)
        default: return nil
        }
    }

    /// A NIO socket address for this address and `port`.
    public func socketAddress(port: Int) throws -> SocketAddress {
        try SocketAddress(ipAddress: description, port: port)
    }
}

extension ByteBuffer {
    /// Writes an IPv4 or IPv6 Address parameter (RFC 5354 §3.1/§3.2).
    public mutating func writeAddressParameter(_ address: IPAddress) {
        switch address {
        case .v4(let value):
            writeTLV(type: ParameterType.ipv4Address.rawValue) { $0.writeInteger(value) }
        case .v6(let high, let low):
            writeTLV(type: ParameterType.ipv6Address.rawValue) { $0.writeInteger(high); $0.writeInteger(low) }
        }
    }
}

extension IPAddress {
    /// Decodes an address parameter's value.
    static func decode(_ raw: RawParameter) throws(RSerPoolWireError) -> IPAddress {
        var value = raw.value
        switch raw.type {
        case .ipv4Address where value.readableBytes == 4:
            return .v4(value.readInteger()!)
        case .ipv6Address where value.readableBytes == 16:
            return .v6(value.readInteger()!, value.readInteger()!)
        default:
            throw RSerPoolWireError(.invalidValue, "\(raw.type) has a \(value.readableBytes)-byte value",
                                    parameterType: raw.type.rawValue, bytes: raw.whole)
        }
    }
}
