/// An ASAP message type (RFC 5352 §2.2). Open struct: an unknown type is data, not a crash.
public struct ASAPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let registration = Self(0x01)
    public static let deregistration = Self(0x02)
    public static let registrationResponse = Self(0x03)
    public static let deregistrationResponse = Self(0x04)
    public static let handleResolution = Self(0x05)
    public static let handleResolutionResponse = Self(0x06)
    public static let endpointKeepAlive = Self(0x07)
    public static let endpointKeepAliveAck = Self(0x08)
    public static let endpointUnreachable = Self(0x09)
    public static let serverAnnounce = Self(0x0A)
    public static let cookie = Self(0x0B)
    public static let cookieEcho = Self(0x0C)
    public static let businessCard = Self(0x0D)
    public static let error = Self(0x0E)

    public var description: String {
        switch self {
        case .registration: "Registration"
        case .deregistration: "Deregistration"
        case .registrationResponse: "Registration Response"
        case .deregistrationResponse: "Deregistration Response"
        case .handleResolution: "Handle Resolution"
        case .handleResolutionResponse: "Handle Resolution Response"
        case .endpointKeepAlive: "Endpoint Keep-Alive"
        case .endpointKeepAliveAck: "Endpoint Keep-Alive Ack"
        case .endpointUnreachable: "Endpoint Unreachable"
        case .serverAnnounce: "Server Announce"
        case .cookie: "Cookie"
        case .cookieEcho: "Cookie Echo"
        case .businessCard: "Business Card"
        case .error: "ASAP Error"
        default: "ASAP message 0x\(String(rawValue, radix: 16))"
        }
    }
}
