import NIOCore
import RSerPoolWire

/// An event of the `mptcp_pm_events` group (linux/mptcp.h `mptcp_event_type`): one MPTCP
/// connection or subflow of the namespace came, went or changed. Ports arrive in network order.
public struct MPTCPEvent: Hashable, Sendable {
    /// MPTCP_EVENT_*.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let created = Self(rawValue: 1)
        public static let established = Self(rawValue: 2)
        public static let closed = Self(rawValue: 3)
        public static let announced = Self(rawValue: 6)
        public static let removed = Self(rawValue: 7)
        public static let subflowEstablished = Self(rawValue: 10)
        public static let subflowClosed = Self(rawValue: 11)
        public static let subflowPriority = Self(rawValue: 13)
        public static let listenerCreated = Self(rawValue: 15)
        public static let listenerClosed = Self(rawValue: 16)

        public var description: String {
            switch self {
            case .created: "created"
            case .established: "established"
            case .closed: "closed"
            case .announced: "announced"
            case .removed: "removed"
            case .subflowEstablished: "subflow established"
            case .subflowClosed: "subflow closed"
            case .subflowPriority: "subflow priority"
            case .listenerCreated: "listener created"
            case .listenerClosed: "listener closed"
            default: "event \(rawValue)"
            }
        }
    }

    /// MPTCP_ATTR_*.
    enum Attribute {
        static let token: UInt16 = 1
        static let family: UInt16 = 2
        static let localID: UInt16 = 3
        static let remoteID: UInt16 = 4
        static let sourceIPv4: UInt16 = 5
        static let sourceIPv6: UInt16 = 6
        static let destinationIPv4: UInt16 = 7
        static let destinationIPv6: UInt16 = 8
        static let sourcePort: UInt16 = 9
        static let destinationPort: UInt16 = 10
        static let backup: UInt16 = 11
        static let error: UInt16 = 12
        static let interfaceIndex: UInt16 = 15
    }

    public var kind: Kind
    public var token: UInt32?
    public var localID: UInt8?
    public var remoteID: UInt8?
    public var source: IPAddress?
    public var destination: IPAddress?
    /// Host order (converted from the event's network order).
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var backup: Bool?
    /// The subflow's socket error (110: timed out) on SUB_CLOSED.
    public var error: UInt8?
    public var interfaceIndex: Int32?

    public init(kind: Kind, token: UInt32? = nil) {
        self.kind = kind
        self.token = token
    }

    /// Decodes an event message; unknown attributes are skipped (a newer kernel adds some).
    public init(_ message: NetlinkMessage) throws(NetlinkError) {
        let (command, attributes) = try GenericNetlink.parse(message)
        self.init(kind: Kind(rawValue: command), token: attributes.first(Attribute.token)?.u32)
        localID = attributes.first(Attribute.localID)?.u8
        remoteID = attributes.first(Attribute.remoteID)?.u8
        source = MPTCPPathManager.ipAddress(attributes, v4: Attribute.sourceIPv4, v6: Attribute.sourceIPv6)
        destination = MPTCPPathManager.ipAddress(attributes, v4: Attribute.destinationIPv4, v6: Attribute.destinationIPv6)
        sourcePort = attributes.first(Attribute.sourcePort)?.be16
        destinationPort = attributes.first(Attribute.destinationPort)?.be16
        backup = attributes.first(Attribute.backup)?.u8.map { $0 != 0 }
        error = attributes.first(Attribute.error)?.u8
        interfaceIndex = attributes.first(Attribute.interfaceIndex)?.s32
    }
}
