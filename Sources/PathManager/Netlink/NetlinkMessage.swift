import NIOCore

/// One netlink message (`struct nlmsghdr`, linux/netlink.h) with its payload. Netlink is in
/// the host's byte order; every length is checked against the bytes there are.
public struct NetlinkMessage: Hashable, Sendable {
    public static let headerLength = 16

    public var type: UInt16
    public var flags: NetlinkFlags
    public var sequence: UInt32
    public var portID: UInt32
    /// The bytes after the header (for generic netlink: the genlmsghdr and the attributes).
    public var payload: ByteBuffer

    public init(type: UInt16, flags: NetlinkFlags, sequence: UInt32, portID: UInt32 = 0, payload: ByteBuffer) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// NLMSG_ERROR (an ACK when the error is 0), NLMSG_DONE.
    public static let errorType: UInt16 = 2
    public static let doneType: UInt16 = 3

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(Self.headerLength + payload.readableBytes), endianness: .host)
        buffer.writeInteger(type, endianness: .host)
        buffer.writeInteger(flags.rawValue, endianness: .host)
        buffer.writeInteger(sequence, endianness: .host)
        buffer.writeInteger(portID, endianness: .host)
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeRepeatingByte(0, count: NetlinkAttribute.padding(Self.headerLength + self.payload.readableBytes))
    }

    public var bytes: [UInt8] {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return Array(buffer: buffer)
    }

    /// Splits a datagram the kernel sent into its messages.
    public static func parse(_ datagram: ByteBuffer) throws(NetlinkError) -> [NetlinkMessage] {
        var buffer = datagram
        var messages: [NetlinkMessage] = []
        while buffer.readableBytes > 0 {
            guard buffer.readableBytes >= headerLength,
                  let length = buffer.getInteger(at: buffer.readerIndex, endianness: .host, as: UInt32.self) else {
                throw NetlinkError("truncated netlink header (\(buffer.readableBytes) bytes)")
            }
            guard length >= UInt32(headerLength), Int(length) <= buffer.readableBytes else {
                throw NetlinkError("netlink message length \(length) with \(buffer.readableBytes) bytes left")
            }
            var message = buffer.readSlice(length: Int(length))!
            buffer.moveReaderIndex(forwardBy: min(NetlinkAttribute.padding(Int(length)), buffer.readableBytes))
            message.moveReaderIndex(forwardBy: 4)
            let type = message.readInteger(endianness: .host, as: UInt16.self)!
            let flags = message.readInteger(endianness: .host, as: UInt16.self)!
            let sequence = message.readInteger(endianness: .host, as: UInt32.self)!
            let port = message.readInteger(endianness: .host, as: UInt32.self)!
            messages.append(NetlinkMessage(type: type, flags: NetlinkFlags(rawValue: flags), sequence: sequence, portID: port, payload: message))
        }
        return messages
    }

    /// For NLMSG_ERROR: the (negative) errno, 0 for an acknowledgement.
    public var errorCode: Int32? {
        guard type == Self.errorType, payload.readableBytes >= 4 else { return nil }
        return payload.getInteger(at: payload.readerIndex, endianness: .host, as: Int32.self)
    }

    /// For an NLMSG_ERROR that is not an acknowledgement: the errno as a positive number. (A
    /// code of Int32.min, which no kernel sends but a fuzzer did, cannot be negated: it is
    /// reported as Int32.max rather than trapping.)
    public var errorNumber: Int32? {
        guard let code = errorCode, code != 0 else { return nil }
        return code == .min ? .max : code < 0 ? -code : code
    }
}

/// `nlmsghdr.nlmsg_flags`.
public struct NetlinkFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let request = Self(rawValue: 0x1)
    public static let multi = Self(rawValue: 0x2)
    public static let acknowledge = Self(rawValue: 0x4)
    public static let dump = Self(rawValue: 0x300)
    /// For new objects (RTM_NEWROUTE…): replace an existing one, create it if missing.
    public static let replace = Self(rawValue: 0x100)
    public static let create = Self(rawValue: 0x400)
}

/// A netlink attribute (`struct nlattr`): length, type, value, padded to 4 bytes.
public struct NetlinkAttribute: Hashable, Sendable {
    /// NLA_F_NESTED: the value is itself a list of attributes.
    public static let nestedFlag: UInt16 = 0x8000
    static let typeMask: UInt16 = 0x3FFF

    public var type: UInt16
    public var value: ByteBuffer

    public init(type: UInt16, value: ByteBuffer) {
        self.type = type
        self.value = value
    }

    public static func padding(_ length: Int) -> Int { (4 - length % 4) % 4 }

    public static func u8(_ type: UInt16, _ value: UInt8) -> Self { Self(type: type, value: ByteBuffer(bytes: [value])) }
    public static func u16(_ type: UInt16, _ value: UInt16) -> Self { integer(type, value) }
    public static func u32(_ type: UInt16, _ value: UInt32) -> Self { integer(type, value) }
    public static func s32(_ type: UInt16, _ value: Int32) -> Self { integer(type, value) }
    public static func bytes(_ type: UInt16, _ value: [UInt8]) -> Self { Self(type: type, value: ByteBuffer(bytes: value)) }
    /// A NUL-terminated string.
    public static func string(_ type: UInt16, _ value: String) -> Self { bytes(type, Array(value.utf8) + [0]) }
    public static func nested(_ type: UInt16, _ attributes: [NetlinkAttribute]) -> Self {
        var value = ByteBuffer()
        for attribute in attributes { attribute.write(to: &value) }
        return Self(type: type | nestedFlag, value: value)
    }

    private static func integer<T: FixedWidthInteger>(_ type: UInt16, _ value: T) -> Self {
        var buffer = ByteBuffer()
        buffer.writeInteger(value, endianness: .host)
        return Self(type: type, value: buffer)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(4 + value.readableBytes), endianness: .host)
        buffer.writeInteger(type, endianness: .host)
        var value = value
        buffer.writeBuffer(&value)
        buffer.writeRepeatingByte(0, count: Self.padding(4 + self.value.readableBytes))
    }

    /// The attribute type without the nested / byte-order flags.
    public var kind: UInt16 { type & Self.typeMask }

    /// Reads every attribute in `buffer` (an attribute list or a nested value).
    public static func parse(_ buffer: ByteBuffer) throws(NetlinkError) -> [NetlinkAttribute] {
        var buffer = buffer
        var attributes: [NetlinkAttribute] = []
        while buffer.readableBytes >= 4 {
            let length = Int(buffer.getInteger(at: buffer.readerIndex, endianness: .host, as: UInt16.self)!)
            guard length >= 4, length <= buffer.readableBytes else {
                throw NetlinkError("attribute length \(length) with \(buffer.readableBytes) bytes left")
            }
            var attribute = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: min(padding(length), buffer.readableBytes))
            attribute.moveReaderIndex(forwardBy: 2)
            let type = attribute.readInteger(endianness: .host, as: UInt16.self)!
            attributes.append(NetlinkAttribute(type: type, value: attribute))
        }
        guard buffer.readableBytes == 0 else { throw NetlinkError("\(buffer.readableBytes) trailing bytes after the attributes") }
        return attributes
    }

    public var u8: UInt8? { value.readableBytes == 1 ? value.getInteger(at: value.readerIndex) : nil }
    public var u16: UInt16? { value.readableBytes == 2 ? value.getInteger(at: value.readerIndex, endianness: .host) : nil }
    /// A 16-bit value in network order (MPTCP event ports).
    public var be16: UInt16? { value.readableBytes == 2 ? value.getInteger(at: value.readerIndex, endianness: .big) : nil }
    public var u32: UInt32? { value.readableBytes == 4 ? value.getInteger(at: value.readerIndex, endianness: .host) : nil }
    public var s32: Int32? { value.readableBytes == 4 ? value.getInteger(at: value.readerIndex, endianness: .host) : nil }
    public var string: String? {
        guard var bytes = value.getBytes(at: value.readerIndex, length: value.readableBytes) else { return nil }
        if bytes.last == 0 { bytes.removeLast() }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension Array where Element == NetlinkAttribute {
    public func first(_ kind: UInt16) -> NetlinkAttribute? { first { $0.kind == kind } }
}

/// A netlink message or attribute that does not parse, or a kernel error reply.
public struct NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    /// The errno of an NLMSG_ERROR reply, positive (ENOENT 2, EEXIST 17, EPERM 1, …).
    public var errno: Int32?
    public init(_ description: String, errno: Int32? = nil) {
        self.description = description
        self.errno = errno
    }
}
