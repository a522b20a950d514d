import NIOCore
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

/// An active probe of one path: a TCP handshake from the path's local address (and its
/// interface) to a target. Any answer — SYN-ACK or RST — means packets went out this way and
/// came back; only silence (or a local "unreachable") means the path is broken. Point it at a
/// closed port on the peer and the probe costs the peer nothing but a reset.
final class PathProbe {
    enum Outcome: Equatable {
        case pending
        case answered
        case failed(String)
    }

    let fd: Int32
    let started: NIODeadline

    init?(from local: IPAddress, interface: String?, to target: IPAddress, port: UInt16, now: NIODeadline) {
        let family = if case .v4 = local.unmappedIPv4 { AF_INET } else { AF_INET6 }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        if let interface {
            _ = interface.withCString { name in setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, socklen_t(strlen(name) + 1)) }
        }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)   // close with RST: no TIME_WAIT per probe
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        guard Self.withAddress(local, port: 0, { bind(fd, $0, $1) }) == 0 else {
            close(fd)
            return nil
        }
        var immediate: Outcome?
        if Self.withAddress(target, port: port, { connect(fd, $0, $1) }) != 0 && errno != EINPROGRESS {
            // Refused at once is still an answer; "network unreachable" and the like are not.
            let code = errno
            immediate = code == ECONNREFUSED ? .answered : .failed(String(cString: strerror(code)))
        }
        self.fd = fd
        self.started = now
        self.outcomeNow = immediate
    }

    private let outcomeNow: Outcome?

    /// Decided when it was sent (refused at once, or no route): nothing to wait for.
    var answeredAtOnce: Bool { outcomeNow != nil }

    deinit { close(fd) }

    /// Whether the handshake finished (answered either way), failed, or is still pending.
    func poll(now: NIODeadline, timeout: TimeAmount) -> Outcome {
        if let outcomeNow { return outcomeNow }
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        if Glibc.poll(&entry, 1, 0) > 0 {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 || error == ECONNREFUSED { return .answered }
            return .failed(String(cString: strerror(error)))
        }
        return now - started >= timeout ? .failed("no answer within \(timeout)") : .pending
    }

    static func withAddress<T>(_ address: IPAddress, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch address.unmappedIPv4 {
        case .v4(let value):
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_port = port.bigEndian
            storage.sin_addr.s_addr = value.bigEndian
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(let high, let low):
            var storage = sockaddr_in6()
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage.sin6_addr) { raw in
                withUnsafeBytes(of: high.bigEndian) { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
                withUnsafeBytes(of: low.bigEndian) { (raw.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            }
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
    }
}
