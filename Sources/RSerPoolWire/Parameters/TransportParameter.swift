import NIOCore

/// RFC 5354 §3.3: how a transport parameter says whether the PE's address also carries ASAP
/// control traffic (Cookie, Business Card) or data only.
public struct TransportUse: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let dataOnly = TransportUse(rawValue: 0)
    public static let dataPlusControl = TransportUse(rawValue: 1)
}

/// A transport address: protocol, port and the address(es), as in the RFC 5354 transport
/// parameters (§3.3 SCTP, TCP, UDP, UDP-Lite, DCCP). SCTP may list several addresses
/// (multi-homing); the others list one.
public struct TransportAddress: Hashable, Sendable, CustomStringConvertible {
    /// The parameter type: `.tcpTransport`, `.sctpTransport`, `.udpTransport`, … .
    public var kind: ParameterType
    public var port: UInt16
    /// For SCTP and TCP; zero ("reserved") for the others.
    public var transportUse: TransportUse
    /// DCCP only.
    public var dccpServiceCode: UInt32
    public var addresses: [IPAddress]

    public init(kind: ParameterType = .tcpTransport, addresses: [IPAddress], port: UInt16,
                transportUse: TransportUse = .dataOnly, dccpServiceCode: UInt32 = 0) {
        self.kind = kind
        self.addresses = addresses
        self.port = port
        self.transportUse = transportUse
        self.dccpServiceCode = dccpServiceCode
    }

    /// A TCP transport address (ASAP over TCP or MPTCP uses this type too: MPTCP is TCP on the wire).
    public static func tcp(_ address: IPAddress, port: UInt16, transportUse: TransportUse = .dataOnly) -> TransportAddress {
        TransportAddress(kind: .tcpTransport, addresses: [address], port: port, transportUse: transportUse)
    }

    public static let transportKinds: Set<ParameterType> = [.sctpTransport, .tcpTransport, .udpTransport, .udpLiteTransport, .dccpTransport]

    public var protocolName: String {
        switch kind {
        case .tcpTransport: "tcp"
        case .sctpTransport: "sctp"
        case .udpTransport: "udp"
        case .udpLiteTransport: "udplite"
        case .dccpTransport: "dccp"
        default: "0x\(String(kind.rawValue, radix: 16))"
        }
    }

    public var description: String {
        let hosts = addresses.map { $0.isIPv6 ? "[\($0)]" : "\($0)" }
        return "\(protocolName)://\(hosts.joined(separator: ","))" + ":\(port)"
    }
}

extension ByteBuffer {
    /// Writes a transport parameter (RFC 5354 §3.3).
    public mutating func writeTransportParameter(_ transport: TransportAddress) {
        writeTLV(type: transport.kind.rawValue) { buffer in
            buffer.writeInteger(transport.port)
            switch transport.kind {
            case .sctpTransport, .tcpTransport: buffer.writeInteger(transport.transportUse.rawValue)
            case .dccpTransport: buffer.writeInteger(UInt16(0)); buffer.writeInteger(transport.dccpServiceCode)
            default: buffer.writeInteger(UInt16(0))
            }
            for address in transport.addresses { buffer.writeAddressParameter(address) }
        }
    }
}

extension TransportAddress {
    static func decode(_ raw: RawParameter, limits: WireLimits) throws(RSerPoolWireError) -> TransportAddress {
        var value = raw.value
        let context = "\(raw.type)"
        let port = try value.readFixed(UInt16.self, in: context)
        let use = try value.readFixed(UInt16.self, in: context)
        var serviceCode: UInt32 = 0
        if raw.type == .dccpTransport { serviceCode = try value.readFixed(UInt32.self, in: context) }
        var reader = ParameterReader(value)
        var addresses: [IPAddress] = []
        while let address = try reader.next() {
            guard address.type == .ipv4Address || address.type == .ipv6Address else {
                throw RSerPoolWireError(.invalidValue, "\(context) contains \(address.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            addresses.append(try IPAddress.decode(address))
            guard addresses.count <= limits.maximumAddressesPerTransport else {
                throw RSerPoolWireError(.tooManyItems, "\(context) lists more than \(limits.maximumAddressesPerTransport) addresses",
                                        parameterType: raw.type.rawValue, bytes: raw.whole)
            }
        }
        guard !addresses.isEmpty else {
            throw RSerPoolWireError(.missingParameter, "\(context) lists no address", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        if raw.type != .sctpTransport, addresses.count > 1 {
            throw RSerPoolWireError(.invalidValue, "\(context) lists \(addresses.count) addresses; only SCTP is multi-homed",
                                    parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        let transportUse = (raw.type == .sctpTransport || raw.type == .tcpTransport) ? TransportUse(rawValue: use) : .dataOnly
        return TransportAddress(kind: raw.type, addresses: addresses, port: port, transportUse: transportUse, dccpServiceCode: serviceCode)
    }
}
