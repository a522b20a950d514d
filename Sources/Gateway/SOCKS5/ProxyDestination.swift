import NIOCore
import RSerPoolWire

/// Where a client wants to go: an address or a name the gateway resolves, and a port.
/// SOCKS5 requests, HTTP proxy requests and the gateway pair's header all carry one.
public struct ProxyDestination: Hashable, Sendable, CustomStringConvertible {
    public enum Host: Hashable, Sendable {
        case address(IPAddress)
        /// A DNS name, lower-cased, without a trailing dot.
        case name(String)
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// "example.com", "192.0.2.1" or "2001:db8::1" (no brackets).
    public var hostDescription: String {
        switch host {
        case .address(let ip): "\(ip)"
        case .name(let name): name
        }
    }

    /// "example.com:443", "192.0.2.1:80" or "[2001:db8::1]:80".
    public var description: String {
        if case .address(.v6) = host { return "[\(hostDescription)]:\(port)" }
        return "\(hostDescription):\(port)"
    }

    /// A host as written in a URL, a CONNECT authority or a SOCKS domain field: an IP literal
    /// (IPv6 with or without brackets) or a DNS name. Nil for text that is neither (empty, over
    /// 255 bytes, or characters no host name has).
    public static func parseHost(_ text: Substring) -> Host? {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") {
            text = text.dropFirst().dropLast()
            guard let ip = IPAddress(String(text)), case .v6 = ip else { return nil }
            return .address(ip)
        }
        if let ip = IPAddress(String(text)) { return .address(ip) }
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= ProxyLimits.maximumDomainNameLength else { return nil }
        // Every label has at least one character (RFC 1035): no "a..b", ".a" or "a.." .
        guard !text.hasPrefix("."), !text.hasSuffix("."), !text.contains("..") else { return nil }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                continue
            default:
                return nil
            }
        }
        return .name(text.lowercased())
    }

    /// Encodes as SOCKS5 ATYP + address + port (RFC 1928 §5).
    public func write(to buffer: inout ByteBuffer) {
        switch host {
        case .address(.v4(let a)):
            buffer.writeInteger(SOCKSAddressType.ipv4.rawValue)
            buffer.writeInteger(a)
        case .address(let ip):
            buffer.writeInteger(SOCKSAddressType.ipv6.rawValue)
            buffer.writeBytes(ip.bytes)
        case .name(let name):
            buffer.writeInteger(SOCKSAddressType.domainName.rawValue)
            buffer.writeInteger(UInt8(name.utf8.count))
            buffer.writeString(name)
        }
        buffer.writeInteger(port)
    }

    /// Reads ATYP + address + port. Nil when more bytes are needed (nothing consumed then).
    /// Throws for an unknown address type or a malformed domain name.
    public static func read(from buffer: inout ByteBuffer) throws(ProxyDestinationError) -> ProxyDestination? {
        var copy = buffer
        guard let type = copy.readInteger(as: UInt8.self).map(SOCKSAddressType.init(rawValue:)) else { return nil }
        let host: Host
        switch type {
        case .ipv4:
            guard let a = copy.readInteger(as: UInt32.self) else { return nil }
            host = .address(.v4(a))
        case .ipv6:
            guard let bytes = copy.readBytes(length: 16) else { return nil }
            host = .address(IPAddress(bytes: bytes)!)
        case .domainName:
            guard let length = copy.readInteger(as: UInt8.self), let bytes = copy.readBytes(length: Int(length)) else { return nil }
            guard length > 0, let name = String(validating: bytes, as: UTF8.self), let parsed = parseHost(Substring(name)) else {
                throw .malformedDomainName
            }
            host = parsed
        default:
            throw .unknownAddressType(type.rawValue)
        }
        guard let port = copy.readInteger(as: UInt16.self) else { return nil }
        buffer = copy
        return ProxyDestination(host: host, port: port)
    }
}

/// Why a destination field could not be read.
public enum ProxyDestinationError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownAddressType(UInt8)
    case malformedDomainName

    public var description: String {
        switch self {
        case .unknownAddressType(let type): "unknown address type \(type)"
        case .malformedDomainName: "malformed domain name"
        }
    }
}

/// Bounds on what a client may send before it is relayed.
public enum ProxyLimits {
    /// RFC 1035 §2.3.4: a name is at most 255 octets (and a SOCKS5 length byte cannot say more).
    public static let maximumDomainNameLength = 255
    /// RFC 1929: user name and password are 1–255 bytes each.
    public static let maximumCredentialLength = 255
    /// The most bytes of an HTTP request head (request line and headers) the proxy buffers.
    public static let maximumHTTPHeadLength = 16 * 1024
    /// The most header fields in one HTTP request.
    public static let maximumHTTPHeaderCount = 100
}
