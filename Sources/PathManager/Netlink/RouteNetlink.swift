import NIOCore
import RSerPoolWire

/// The part of rtnetlink (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h) the path
/// manager needs: link messages (`struct ifinfomsg` and IFLA_IFNAME), address messages
/// (`struct ifaddrmsg`, IFA_LOCAL/IFA_ADDRESS, IFA_FLAGS) and routes, from a dump or the
/// RTMGRP_LINK and RTMGRP_IPV4_IFADDR/RTMGRP_IPV6_IFADDR groups.
public enum RouteNetlink {
    /// NETLINK_ROUTE, the socket protocol; RTMGRP_LINK, the group of link changes.
    public static let netlinkProtocol: Int32 = 0
    public static let linkGroup: UInt32 = 1
    /// RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR: addresses added and removed.
    public static let addressGroups: UInt32 = 0x10 | 0x100
    public static let newLink: UInt16 = 16
    public static let deleteLink: UInt16 = 17
    public static let getLink: UInt16 = 18
    static let interfaceNameAttribute: UInt16 = 3
    static let infoLength = 16

    /// A link as a link message describes it.
    public struct Link: Hashable, Sendable {
        public var index: Int32
        public var name: String?
        /// IFF_* flags.
        public var flags: UInt32
        /// The message was RTM_DELLINK: the link is gone.
        public var deleted: Bool

        /// Administratively up (IFF_UP) with a carrier (IFF_LOWER_UP): it can carry packets.
        public var isUp: Bool { !deleted && flags & 0x1 != 0 && flags & 0x1_0000 != 0 }
    }

    /// RTM_GETLINK dump of every link.
    public static func dumpLinks(sequence: UInt32) -> NetlinkMessage {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: infoLength)   // ifinfomsg: any family, any link
        return NetlinkMessage(type: getLink, flags: [.request, .dump], sequence: sequence, payload: payload)
    }

    /// The link a NEWLINK/DELLINK message describes; nil for other messages.
    public static func link(from message: NetlinkMessage) throws(NetlinkError) -> Link? {
        guard message.type == newLink || message.type == deleteLink else { return nil }
        var payload = message.payload
        guard payload.readableBytes >= infoLength else { throw NetlinkError("truncated ifinfomsg (\(payload.readableBytes) bytes)") }
        payload.moveReaderIndex(forwardBy: 4)   // family, pad, type
        let index = payload.readInteger(endianness: .host, as: Int32.self)!
        let flags = payload.readInteger(endianness: .host, as: UInt32.self)!
        payload.moveReaderIndex(forwardBy: 4)   // change mask
        let attributes = try NetlinkAttribute.parse(payload)
        return Link(index: index, name: attributes.first(interfaceNameAttribute)?.string, flags: flags, deleted: message.type == deleteLink)
    }

    // MARK: routes

    public static let newRoute: UInt16 = 24
    public static let getRoute: UInt16 = 26
    static let routeInfoLength = 12
    static let outputInterfaceAttribute: UInt16 = 4   // RTA_OIF
    static let tableAttribute: UInt16 = 15            // RTA_TABLE
    /// RTPROT_KERNEL: routes the kernel makes itself (and makes again) for an address.
    static let kernelProtocol: UInt8 = 2
    static let localTable: UInt32 = 255

    /// A route as the kernel described it (`struct rtmsg` and its attributes), kept whole so that
    /// it can be handed back exactly.
    public struct Route: Hashable, Sendable {
        public var message: ByteBuffer
        public var family: UInt8
        public var table: UInt32
        public var protocolID: UInt8
        public var outputInterface: Int32?

        /// A route someone configured (not the kernel's own for an address, not the local table):
        /// the ones that vanish with their link and do not come back by themselves.
        public var isConfigured: Bool { protocolID != kernelProtocol && table != localTable }
    }

    /// RTM_GETROUTE dump of every table, both families.
    public static func dumpRoutes(sequence: UInt32) -> NetlinkMessage {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: routeInfoLength)
        return NetlinkMessage(type: getRoute, flags: [.request, .dump], sequence: sequence, payload: payload)
    }

    public static func route(from message: NetlinkMessage) throws(NetlinkError) -> Route? {
        guard message.type == newRoute else { return nil }
        var payload = message.payload
        guard payload.readableBytes >= routeInfoLength else { throw NetlinkError("truncated rtmsg (\(payload.readableBytes) bytes)") }
        let whole = payload
        let family = payload.readInteger(as: UInt8.self)!
        payload.moveReaderIndex(forwardBy: 3)   // dst_len, src_len, tos
        var table = UInt32(payload.readInteger(as: UInt8.self)!)
        let protocolID = payload.readInteger(as: UInt8.self)!
        payload.moveReaderIndex(forwardBy: 6)   // scope, type, flags
        let attributes = try NetlinkAttribute.parse(payload)
        if let wide = attributes.first(tableAttribute)?.u32 { table = wide }
        return Route(message: whole, family: family, table: table, protocolID: protocolID,
                     outputInterface: attributes.first(outputInterfaceAttribute)?.s32)
    }

    /// RTM_NEWROUTE with the route as it was (create, or replace what is there).
    public static func addRoute(_ route: Route, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: newRoute, flags: [.request, .acknowledge, .create, .replace], sequence: sequence, payload: route.message)
    }

    // MARK: addresses

    public static let newAddress: UInt16 = 20
    public static let deleteAddress: UInt16 = 21
    public static let getAddress: UInt16 = 22
    static let addressInfoLength = 8
    static let addressAttribute: UInt16 = 1      // IFA_ADDRESS
    static let localAttribute: UInt16 = 2        // IFA_LOCAL
    static let addressFlagsAttribute: UInt16 = 8 // IFA_FLAGS (u32; the ifaddrmsg byte holds only the low 8)

    /// An interface address as a NEWADDR/DELADDR message describes it.
    public struct InterfaceAddress: Hashable, Sendable {
        public var interfaceIndex: Int32
        public var address: IPAddress
        public var prefixLength: UInt8
        /// RT_SCOPE_*: 0 universe (global), 253 link, 254 host.
        public var scope: UInt8
        /// IFA_F_*.
        public var flags: UInt32
        /// The message was RTM_DELADDR: the address is gone.
        public var deleted: Bool

        /// An address subflows can use: global scope, and (IPv6) done with duplicate address
        /// detection — IFA_F_TENTATIVE (0x40) and IFA_F_DADFAILED (0x08) cannot be bound.
        public var isUsable: Bool { !deleted && scope == 0 && flags & (0x40 | 0x08) == 0 }

        public init(interfaceIndex: Int32, address: IPAddress, prefixLength: UInt8, scope: UInt8, flags: UInt32, deleted: Bool) {
            self.interfaceIndex = interfaceIndex
            self.address = address
            self.prefixLength = prefixLength
            self.scope = scope
            self.flags = flags
            self.deleted = deleted
        }
    }

    /// RTM_GETADDR dump of every address, both families.
    public static func dumpAddresses(sequence: UInt32) -> NetlinkMessage {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: addressInfoLength)
        return NetlinkMessage(type: getAddress, flags: [.request, .dump], sequence: sequence, payload: payload)
    }

    /// The address a NEWADDR/DELADDR message describes; nil for other messages and for
    /// families other than IPv4 and IPv6.
    public static func address(from message: NetlinkMessage) throws(NetlinkError) -> InterfaceAddress? {
        guard message.type == newAddress || message.type == deleteAddress else { return nil }
        var payload = message.payload
        guard payload.readableBytes >= addressInfoLength else { throw NetlinkError("truncated ifaddrmsg (\(payload.readableBytes) bytes)") }
        let family = payload.readInteger(as: UInt8.self)!
        let prefixLength = payload.readInteger(as: UInt8.self)!
        let shortFlags = payload.readInteger(as: UInt8.self)!
        let scope = payload.readInteger(as: UInt8.self)!
        let index = payload.readInteger(endianness: .host, as: Int32.self)!
        guard family == 2 || family == 10 else { return nil }
        let attributes = try NetlinkAttribute.parse(payload)
        // IPv4: IFA_LOCAL is this host's address (IFA_ADDRESS is the peer's on a point-to-point
        // link); IPv6 sends IFA_ADDRESS only.
        let raw = (family == 2 ? attributes.first(localAttribute) ?? attributes.first(addressAttribute) : attributes.first(addressAttribute))
            .map { Array($0.value.readableBytesView) }
        guard let raw, raw.count == (family == 2 ? 4 : 16), let address = IPAddress(bytes: raw) else {
            throw NetlinkError("an address message without a \(family == 2 ? "4" : "16")-byte address")
        }
        return InterfaceAddress(interfaceIndex: index, address: address, prefixLength: prefixLength, scope: scope,
                                flags: attributes.first(addressFlagsAttribute)?.u32 ?? UInt32(shortFlags), deleted: message.type == deleteAddress)
    }
}
