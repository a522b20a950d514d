/// An RFC 5354 parameter type. An open struct: an unknown type is data, not a crash.
public struct ParameterType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4Address = Self(0x0001)
    public static let ipv6Address = Self(0x0002)
    public static let dccpTransport = Self(0x0003)
    public static let sctpTransport = Self(0x0004)
    public static let tcpTransport = Self(0x0005)
    public static let udpTransport = Self(0x0006)
    public static let udpLiteTransport = Self(0x0007)
    public static let poolMemberSelectionPolicy = Self(0x0008)
    public static let poolHandle = Self(0x0009)
    public static let poolElement = Self(0x000A)
    public static let serverInformation = Self(0x000B)
    public static let operationError = Self(0x000C)
    public static let cookie = Self(0x000D)
    public static let poolElementIdentifier = Self(0x000E)
    public static let poolElementChecksum = Self(0x000F)
    /// The reference implementation's extension: how many PEs a handle resolution wants.
    public static let handleResolutionOption = Self(0x803F)

    /// Whether this decoder knows the type.
    public var isKnown: Bool { (1...0x000F).contains(rawValue) || self == .handleResolutionOption }

    /// What a receiver does with an unknown parameter of this type (RFC 5354 §2.1, top two bits).
    public var unrecognizedAction: UnrecognizedParameterAction {
        UnrecognizedParameterAction(rawValue: UInt8(rawValue >> 14))!
    }

    public var description: String {
        switch self {
        case .ipv4Address: "IPv4 Address"
        case .ipv6Address: "IPv6 Address"
        case .dccpTransport: "DCCP Transport"
        case .sctpTransport: "SCTP Transport"
        case .tcpTransport: "TCP Transport"
        case .udpTransport: "UDP Transport"
        case .udpLiteTransport: "UDP-Lite Transport"
        case .poolMemberSelectionPolicy: "Pool Member Selection Policy"
        case .poolHandle: "Pool Handle"
        case .poolElement: "Pool Element"
        case .serverInformation: "Server Information"
        case .operationError: "Operation Error"
        case .cookie: "Cookie"
        case .poolElementIdentifier: "PE Identifier"
        case .poolElementChecksum: "PE Checksum"
        case .handleResolutionOption: "Handle Resolution Option"
        default: "parameter 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// The action an RFC 5354 receiver takes on an unrecognized parameter, from its type's top bits.
public enum UnrecognizedParameterAction: UInt8, Sendable {
    /// `00`: stop processing the message, discard it, report nothing.
    case stop = 0
    /// `01`: stop processing, discard, and report "unrecognized parameter".
    case stopAndReport = 1
    /// `10`: skip this parameter and go on.
    case skip = 2
    /// `11`: skip, go on, and report "unrecognized parameter".
    case skipAndReport = 3

    public var stopsProcessing: Bool { self == .stop || self == .stopAndReport }
    public var reports: Bool { self == .stopAndReport || self == .skipAndReport }
}
