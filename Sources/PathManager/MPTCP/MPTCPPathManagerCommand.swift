import NIOCore
import RSerPoolWire

/// The `mptcp_pm` generic netlink family (linux/mptcp.h, version 1): its commands, attributes
/// and endpoint flags. Open structs: a code point the kernel adds later is data, not a crash.
public enum MPTCPPathManager {
    public static let familyName = "mptcp_pm"
    public static let version: UInt8 = 1
    public static let eventsGroup = "mptcp_pm_events"

    /// MPTCP_PM_CMD_*.
    public struct Command: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let addAddress = Self(rawValue: 1)
        public static let deleteAddress = Self(rawValue: 2)
        public static let getAddress = Self(rawValue: 3)
        public static let flushAddresses = Self(rawValue: 4)
        public static let setLimits = Self(rawValue: 5)
        public static let getLimits = Self(rawValue: 6)
        public static let setFlags = Self(rawValue: 7)
        public static let announce = Self(rawValue: 8)
        public static let remove = Self(rawValue: 9)
        public static let subflowCreate = Self(rawValue: 10)
        public static let subflowDestroy = Self(rawValue: 11)
    }

    /// MPTCP_PM_ATTR_* (top level) and MPTCP_PM_ADDR_ATTR_* (inside an address).
    enum Attribute {
        static let address: UInt16 = 1
        static let receivedAddAddresses: UInt16 = 2
        static let subflows: UInt16 = 3
        static let token: UInt16 = 4
        static let localID: UInt16 = 5
        static let remoteAddress: UInt16 = 6
    }
    enum AddressAttribute {
        static let family: UInt16 = 1
        static let id: UInt16 = 2
        static let ipv4: UInt16 = 3
        static let ipv6: UInt16 = 4
        static let port: UInt16 = 5
        static let flags: UInt16 = 6
        static let interfaceIndex: UInt16 = 7
    }

    /// MPTCP_PM_ADDR_FLAG_* of an endpoint.
    public struct EndpointFlags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let signal = Self(rawValue: 1 << 0)
        public static let subflow = Self(rawValue: 1 << 1)
        public static let backup = Self(rawValue: 1 << 2)
        public static let fullmesh = Self(rawValue: 1 << 3)
        public static let implicit = Self(rawValue: 1 << 4)
    }

    /// An in-kernel path manager endpoint (what `ip mptcp endpoint` shows).
    public struct Endpoint: Hashable, Sendable {
        public var id: UInt8
        public var address: IPAddress
        /// Host order; 0: none (the endpoint accepts joins on the listener's port).
        public var port: UInt16
        public var flags: EndpointFlags
        /// 0: any interface.
        public var interfaceIndex: Int32

        public init(id: UInt8, address: IPAddress, port: UInt16 = 0, flags: EndpointFlags, interfaceIndex: Int32 = 0) {
            self.id = id
            self.address = address
            self.port = port
            self.flags = flags
            self.interfaceIndex = interfaceIndex
        }

        /// The nested MPTCP_PM_ATTR_ADDR.
        var attribute: NetlinkAttribute {
            var fields = MPTCPPathManager.addressFields(address, port: port)
            if id != 0 { fields.insert(.u8(AddressAttribute.id, id), at: 1) }
            fields.append(.u32(AddressAttribute.flags, flags.rawValue))
            if interfaceIndex != 0 { fields.append(.s32(AddressAttribute.interfaceIndex, interfaceIndex)) }
            return .nested(Attribute.address, fields)
        }
    }

    static func addressFields(_ address: IPAddress, port: UInt16) -> [NetlinkAttribute] {
        var fields: [NetlinkAttribute]
        switch address.unmappedIPv4 {
        case .v4(let value):
            fields = [.u16(AddressAttribute.family, 2), .bytes(AddressAttribute.ipv4, withUnsafeBytes(of: value.bigEndian, Array.init))]
        case .v6(let high, let low):
            fields = [.u16(AddressAttribute.family, 10),
                      .bytes(AddressAttribute.ipv6, withUnsafeBytes(of: high.bigEndian, Array.init) + withUnsafeBytes(of: low.bigEndian, Array.init))]
        }
        if port != 0 { fields.append(.u16(AddressAttribute.port, port)) }
        return fields
    }

    static func request(_ command: Command, family: UInt16, _ attributes: [NetlinkAttribute], sequence: UInt32) -> NetlinkMessage {
        GenericNetlink.request(family: family, command: command.rawValue, version: version, attributes: attributes, sequence: sequence)
    }

    /// Adds an endpoint (`ip mptcp endpoint add`): with the subflow flag the kernel opens a
    /// subflow from it on every established connection of the namespace, within the limits.
    public static func addEndpoint(_ endpoint: Endpoint, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        request(.addAddress, family: family, [endpoint.attribute], sequence: sequence)
    }

    /// Deletes endpoint `id`: the kernel closes the subflows using it on every connection and
    /// sends RM_ADDR. Delete and re-add re-creates a dead or stuck subflow everywhere at once.
    public static func deleteEndpoint(id: UInt8, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        request(.deleteAddress, family: family, [.nested(Attribute.address, [.u8(AddressAttribute.id, id)])], sequence: sequence)
    }

    /// Sets or clears an endpoint's backup flag (MP_PRIO on existing connections).
    public static func setBackup(id: UInt8, _ backup: Bool, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        request(.setFlags, family: family, [.nested(Attribute.address, [.u8(AddressAttribute.id, id),
                                                                       .u32(AddressAttribute.flags, backup ? EndpointFlags.backup.rawValue : 0)])],
                sequence: sequence)
    }

    /// Dumps the endpoints (`ip mptcp endpoint show`).
    public static func dumpEndpoints(family: UInt16, sequence: UInt32) -> NetlinkMessage {
        GenericNetlink.request(family: family, command: Command.getAddress.rawValue, version: version, attributes: [],
                               sequence: sequence, flags: [.request, .dump])
    }

    /// Userspace PM: a subflow from `local` to `remote` on connection `token` (ports host order).
    public static func createSubflow(token: UInt32, local: IPAddress, localID: UInt8, remote: IPAddress, remotePort: UInt16,
                                     backup: Bool = false, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        var localFields = addressFields(local, port: 0)
        localFields.insert(.u8(AddressAttribute.id, localID), at: 1)
        if backup { localFields.append(.u32(AddressAttribute.flags, EndpointFlags.backup.rawValue)) }
        return request(.subflowCreate, family: family, [.u32(Attribute.token, token), .nested(Attribute.address, localFields),
                                                        .nested(Attribute.remoteAddress, addressFields(remote, port: remotePort))],
                       sequence: sequence)
    }

    /// Userspace PM: closes the subflow with these addresses and ports (both needed; -ESRCH if none).
    public static func destroySubflow(token: UInt32, local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16,
                                      family: UInt16, sequence: UInt32) -> NetlinkMessage {
        request(.subflowDestroy, family: family, [.u32(Attribute.token, token), .nested(Attribute.address, addressFields(local, port: localPort)),
                                                  .nested(Attribute.remoteAddress, addressFields(remote, port: remotePort))],
                sequence: sequence)
    }

    /// Userspace PM: marks one subflow of connection `token` backup or not (MP_PRIO to the
    /// peer; this host's scheduler honours it at once). The subflow is named by its addresses
    /// and ports (host order).
    public static func setSubflowBackup(token: UInt32, local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16,
                                        _ backup: Bool, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        var localFields = addressFields(local, port: localPort)
        localFields.append(.u32(AddressAttribute.flags, backup ? EndpointFlags.backup.rawValue : 0))
        return request(.setFlags, family: family, [.u32(Attribute.token, token), .nested(Attribute.address, localFields),
                                                   .nested(Attribute.remoteAddress, addressFields(remote, port: remotePort))],
                       sequence: sequence)
    }

    /// Userspace PM: tells the peer of connection `token` that local address `localID` is gone
    /// (RM_ADDR on one of the connection's subflows); 0 is the first subflow's address.
    public static func removeAddress(token: UInt32, localID: UInt8, family: UInt16, sequence: UInt32) -> NetlinkMessage {
        request(.remove, family: family, [.u32(Attribute.token, token), .u8(Attribute.localID, localID)], sequence: sequence)
    }

    /// The endpoints in a dump answer.
    public static func endpoints(in message: NetlinkMessage) throws(NetlinkError) -> [Endpoint] {
        guard message.type != NetlinkMessage.doneType else { return [] }
        let (_, attributes) = try GenericNetlink.parse(message)
        guard let address = attributes.first(Attribute.address) else { return [] }
        let fields = try NetlinkAttribute.parse(address.value)
        guard let ip = ipAddress(fields, v4: AddressAttribute.ipv4, v6: AddressAttribute.ipv6) else { throw NetlinkError("an endpoint without an address") }
        return [Endpoint(id: fields.first(AddressAttribute.id)?.u8 ?? 0, address: ip, port: fields.first(AddressAttribute.port)?.u16 ?? 0,
                         flags: EndpointFlags(rawValue: fields.first(AddressAttribute.flags)?.u32 ?? 0),
                         interfaceIndex: fields.first(AddressAttribute.interfaceIndex)?.s32 ?? 0)]
    }

    static func ipAddress(_ fields: [NetlinkAttribute], v4: UInt16, v6: UInt16) -> IPAddress? {
        if let raw = fields.first(v4), raw.value.readableBytes == 4, let value = raw.value.getInteger(at: raw.value.readerIndex, endianness: .big, as: UInt32.self) {
            return .v4(value)
        }
        if let raw = fields.first(v6), raw.value.readableBytes == 16,
           let high = raw.value.getInteger(at: raw.value.readerIndex, endianness: .big, as: UInt64.self),
           let low = raw.value.getInteger(at: raw.value.readerIndex + 8, endianness: .big, as: UInt64.self) {
            return .v6(high, low)
        }
        return nil
    }
}
