import NIOCore

/// Generic netlink (linux/genetlink.h): a `genlmsghdr` after the netlink header, families
/// found by name through the controller.
public enum GenericNetlink {
    /// NETLINK_GENERIC, the socket protocol.
    public static let netlinkProtocol: Int32 = 16
    /// GENL_ID_CTRL and its commands and attributes.
    public static let controllerID: UInt16 = 0x10
    static let getFamilyCommand: UInt8 = 3
    static let familyIDAttribute: UInt16 = 1
    static let familyNameAttribute: UInt16 = 2
    static let multicastGroupsAttribute: UInt16 = 7
    static let groupNameAttribute: UInt16 = 1
    static let groupIDAttribute: UInt16 = 2

    /// A generic netlink request: `command` with `attributes` to family `family`.
    public static func request(family: UInt16, command: UInt8, version: UInt8, attributes: [NetlinkAttribute],
                               sequence: UInt32, flags: NetlinkFlags = [.request, .acknowledge]) -> NetlinkMessage {
        var payload = ByteBuffer()
        payload.writeInteger(command)
        payload.writeInteger(version)
        payload.writeInteger(UInt16(0))
        for attribute in attributes { attribute.write(to: &payload) }
        return NetlinkMessage(type: family, flags: flags, sequence: sequence, payload: payload)
    }

    /// CTRL_CMD_GETFAMILY for `name` ("mptcp_pm").
    public static func familyRequest(name: String, sequence: UInt32) -> NetlinkMessage {
        request(family: controllerID, command: getFamilyCommand, version: 1, attributes: [.string(familyNameAttribute, name)],
                sequence: sequence, flags: [.request])
    }

    /// A family's number and its multicast groups, from the controller's answer.
    public struct Family: Hashable, Sendable {
        public var identifier: UInt16
        public var multicastGroups: [String: UInt32]
    }

    /// The command byte and attributes of a generic netlink message.
    public static func parse(_ message: NetlinkMessage) throws(NetlinkError) -> (command: UInt8, attributes: [NetlinkAttribute]) {
        if let errno = message.errorNumber {
            throw NetlinkError("the kernel answered errno \(errno)", errno: errno)
        }
        var payload = message.payload
        guard let command = payload.readInteger(as: UInt8.self), payload.readInteger(as: UInt8.self) != nil,
              payload.readInteger(as: UInt16.self) != nil else { throw NetlinkError("truncated generic netlink header") }
        return (command, try NetlinkAttribute.parse(payload))
    }

    public static func family(from message: NetlinkMessage) throws(NetlinkError) -> Family {
        let (_, attributes) = try parse(message)
        guard let identifier = attributes.first(familyIDAttribute)?.u16 else { throw NetlinkError("no family id in the controller's answer") }
        var groups: [String: UInt32] = [:]
        if let list = attributes.first(multicastGroupsAttribute) {
            for group in try NetlinkAttribute.parse(list.value) {
                let fields = try NetlinkAttribute.parse(group.value)
                if let name = fields.first(groupNameAttribute)?.string, let id = fields.first(groupIDAttribute)?.u32 { groups[name] = id }
            }
        }
        return Family(identifier: identifier, multicastGroups: groups)
    }
}
