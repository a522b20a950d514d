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
}
