/// An ENRP message type (RFC 5353 §2). Open struct: an unknown type is data, not a crash.
public struct ENRPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let presence = Self(0x01)
    public static let handleTableRequest = Self(0x02)
    public static let handleTableResponse = Self(0x03)
    public static let handleUpdate = Self(0x04)
    public static let listRequest = Self(0x05)
    public static let listResponse = Self(0x06)
    public static let initTakeover = Self(0x07)
    public static let initTakeoverAck = Self(0x08)
    public static let takeoverServer = Self(0x09)
    public static let error = Self(0x0A)

    public var description: String {
        switch self {
        case .presence: "Presence"
        case .handleTableRequest: "Handle Table Request"
        case .handleTableResponse: "Handle Table Response"
        case .handleUpdate: "Handle Update"
        case .listRequest: "List Request"
        case .listResponse: "List Response"
        case .initTakeover: "Init Takeover"
        case .initTakeoverAck: "Init Takeover Ack"
        case .takeoverServer: "Takeover Server"
        case .error: "ENRP Error"
        default: "ENRP message 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// Handle Update action (RFC 5353 §2.4).
public struct HandleUpdateAction: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let addPoolElement = Self(rawValue: 0)
    public static let deletePoolElement = Self(rawValue: 1)
}
