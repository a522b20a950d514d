import NIOCore

/// The part of rtnetlink (linux/rtnetlink.h, linux/if_link.h) the path manager needs: link
/// messages (`struct ifinfomsg` and IFLA_IFNAME), from a dump or the RTMGRP_LINK group.
public enum RouteNetlink {
    /// NETLINK_ROUTE, the socket protocol; RTMGRP_LINK, the group of link changes.
    public static let netlinkProtocol: Int32 = 0
    public static let linkGroup: UInt32 = 1
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
}
