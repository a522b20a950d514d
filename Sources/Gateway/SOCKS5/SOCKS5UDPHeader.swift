import NIOCore

/// The header in front of every datagram of a SOCKS5 UDP association (RFC 1928 §7):
/// RSV(2) = 0, FRAG(1), ATYP, DST.ADDR, DST.PORT, then the payload. From the client it names
/// where the payload goes; towards the client it names where the payload came from.
public struct SOCKS5UDPHeader: Hashable, Sendable {
    /// The fragment number; 0 for a datagram that stands alone. The gateway does not
    /// reassemble (RFC 1928 allows that) and drops every datagram whose FRAG is not 0.
    public var fragment: UInt8
    public var address: ProxyDestination

    public init(fragment: UInt8 = 0, address: ProxyDestination) {
        self.fragment = fragment
        self.address = address
    }

    /// Reads a header; `datagram` is left holding the payload. Throws for a datagram too short
    /// to hold a header, non-zero reserved bytes, an unknown address type or a malformed name.
    public static func read(from datagram: inout ByteBuffer) throws(SOCKS5UDPHeaderError) -> SOCKS5UDPHeader {
        var copy = datagram
        guard let reserved = copy.readInteger(as: UInt16.self), let fragment = copy.readInteger(as: UInt8.self) else { throw .truncated }
        guard reserved == 0 else { throw .nonZeroReserved(reserved) }
        let address: ProxyDestination
        do {
            guard let parsed = try ProxyDestination.read(from: &copy) else { throw SOCKS5UDPHeaderError.truncated }
            address = parsed
        } catch let error as SOCKS5UDPHeaderError {
            throw error
        } catch ProxyDestinationError.unknownAddressType(let type) {
            throw .unknownAddressType(type)
        } catch {
            throw .malformedDomainName
        }
        datagram = copy
        return SOCKS5UDPHeader(fragment: fragment, address: address)
    }

    /// Writes RSV FRAG ATYP ADDR PORT.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(fragment)
        address.write(to: &buffer)
    }

    /// The most bytes a header takes (a 255-byte domain name).
    public static let maximumLength = 2 + 1 + 1 + 1 + ProxyLimits.maximumDomainNameLength + 2
}

/// Why a datagram from a SOCKS5 client could not be relayed: what the log line says.
public enum SOCKS5UDPHeaderError: Error, Hashable, Sendable, CustomStringConvertible {
    case truncated
    case nonZeroReserved(UInt16)
    case unknownAddressType(UInt8)
    case malformedDomainName

    public var description: String {
        switch self {
        case .truncated: "datagram too short for a SOCKS5 UDP header"
        case .nonZeroReserved(let value): "reserved field is \(value), not 0"
        case .unknownAddressType(let type): "unknown address type \(type)"
        case .malformedDomainName: "malformed domain name"
        }
    }
}
