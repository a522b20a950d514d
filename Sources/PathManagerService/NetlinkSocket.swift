import NIOCore
import PathManager

#if canImport(Glibc)
import Glibc
#endif

/// A blocking netlink socket to the kernel of the calling process's network namespace, with
/// a receive timeout. For the path manager's commands (a request, its replies, its ACK); the
/// event stream gets a socket of its own.
public final class NetlinkSocket {
    public let fd: Int32
    private var nextSequence: UInt32 = 1

    public init(protocol netlinkProtocol: Int32, groups: UInt32 = 0, timeout: TimeAmount = .seconds(2)) throws(NetlinkError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkProtocol)
        guard fd >= 0 else { throw NetlinkError("socket(AF_NETLINK): \(String(cString: strerror(errno)))", errno: errno) }
        var time = timeval(tv_sec: Int(timeout.nanoseconds / 1_000_000_000), tv_usec: Int(timeout.nanoseconds % 1_000_000_000 / 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; u32 nl_pid; u32 nl_groups; }
        var address = [UInt8](repeating: 0, count: 12)
        address[0] = UInt8(AF_NETLINK)
        withUnsafeBytes(of: groups) { address.replaceSubrange(8..<12, with: $0) }
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw NetlinkError("bind(AF_NETLINK): \(String(cString: strerror(code)))", errno: code)
        }
    }

    deinit { close(fd) }

    public func makeSequence() -> UInt32 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }

    /// Joins a multicast group (NETLINK_ADD_MEMBERSHIP; the MPTCP events group needs CAP_NET_ADMIN).
    public func join(group: UInt32) throws(NetlinkError) {
        var value = group
        guard setsockopt(fd, 270 /* SOL_NETLINK */, 1 /* NETLINK_ADD_MEMBERSHIP */, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
            throw NetlinkError("joining netlink group \(group): \(String(cString: strerror(errno)))", errno: errno)
        }
    }

    public func send(_ message: NetlinkMessage) throws(NetlinkError) {
        let bytes = message.bytes
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw NetlinkError("netlink send: \(String(cString: strerror(errno)))", errno: errno) }
    }

    /// Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE, which CAP_NET_ADMIN may use past
    /// net.core.rmem_max; else SO_RCVBUF up to that limit): a multicast group that bursts (a
    /// thousand connections opening at once) overflows the default ~200 KiB, and the kernel
    /// drops what does not fit.
    public func setReceiveBuffer(_ bytes: Int32) {
        var value = bytes
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// One datagram's messages; throws on the timeout (or, with `waiting` false, at once when
    /// nothing is queued: errno EAGAIN). ENOBUFS means messages were dropped before this one.
    public func receive(waiting: Bool = true) throws(NetlinkError) -> [NetlinkMessage] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, waiting ? 0 : Int32(MSG_DONTWAIT)) }
        guard received > 0 else { throw NetlinkError("netlink receive: \(String(cString: strerror(errno)))", errno: errno) }
        return try NetlinkMessage.parse(ByteBuffer(bytes: buffer[0..<received]))
    }

    /// Sends `message` and collects the answers with its sequence number until its ACK (or the
    /// end of a dump); a kernel error becomes a `NetlinkError` with the errno.
    public func request(_ message: NetlinkMessage) throws(NetlinkError) -> [NetlinkMessage] {
        try send(message)
        var answers: [NetlinkMessage] = []
        // Bounded: a kernel that never ends the answer cannot hold the caller.
        for _ in 0..<10_000 {
            for answer in try receive() where answer.sequence == message.sequence {
                if answer.type == NetlinkMessage.errorType {
                    if let errno = answer.errorNumber {
                        let hint = errno == EPERM ? " (changing MPTCP endpoints and subflows needs CAP_NET_ADMIN: run as root, or give the binary the capability)" : ""
                        throw NetlinkError("the kernel refused: \(String(decoding: strerrorBytes(errno), as: UTF8.self))\(hint)", errno: errno)
                    }
                    return answers
                }
                if answer.type == NetlinkMessage.doneType { return answers }
                answers.append(answer)
                if !message.flags.contains(.dump) && !message.flags.contains(.acknowledge) { return answers }
            }
        }
        throw NetlinkError("no end to the kernel's answer")
    }
}

/// strerror's text as bytes (without the terminating zero).
func strerrorBytes(_ code: Int32) -> [UInt8] {
    guard let text = strerror(code) else { return Array("errno \(code)".utf8) }
    return Array(UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self), count: strlen(text)))
}
