import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Blocking sockets for the gateway benchmark's clients and servers: plain POSIX calls on
/// threads, so the load generator costs the same whatever proxy is measured.
enum BenchSocket {
    static let ipprotoMPTCP: Int32 = 262

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    /// A connected socket to 127.0.0.1:port (MPTCP or TCP), TCP_NODELAY on.
    static func connect(port: Int, mptcp: Bool) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), mptcp ? ipprotoMPTCP : 0)
        guard fd >= 0 else { throw Failure("socket: errno \(errno)") }
        var address = loopback(port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw Failure("connect to \(port): errno \(error)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// A listening socket on 127.0.0.1 (port 0: any); returns (fd, port).
    static func listen(mptcp: Bool, port: Int = 0) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), mptcp ? ipprotoMPTCP : 0)
        guard fd >= 0 else { throw Failure("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, Glibc.listen(fd, 4096) == 0 else { throw Failure("bind/listen: errno \(errno)") }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure("send: errno \(errno)") }
            sent += n
        }
    }

    static func receive(_ fd: Int32, exactly count: Int, into buffer: inout [UInt8]) throws {
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            guard n > 0 else { throw Failure("recv: \(n == 0 ? "closed" : "errno \(errno)")") }
            got += n
        }
    }

    /// SOCKS5 CONNECT (no authentication) to 127.0.0.1:port over `fd`.
    static func socks5Connect(_ fd: Int32, targetPort: Int) throws {
        var reply = [UInt8](repeating: 0, count: 10)
        try send(fd, [5, 1, 0])
        try receive(fd, exactly: 2, into: &reply)
        guard reply[0] == 5, reply[1] == 0 else { throw Failure("SOCKS5 method refused: \(reply.prefix(2))") }
        try send(fd, [5, 1, 0, 1, 127, 0, 0, 1, UInt8(targetPort >> 8), UInt8(targetPort & 0xFF)])
        try receive(fd, exactly: 10, into: &reply)
        guard reply[1] == 0 else { throw Failure("SOCKS5 CONNECT refused: reply \(reply[1])") }
    }

    /// 10,000 relayed connections need about 20,000 descriptors in a gateway and as many in
    /// the benchmark (children inherit the limit); root may raise the hard limit (up to
    /// fs.nr_open), others get the hard limit.
    static func raiseFileLimit(connections: Int) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let wanted = rlim_t(max(4 * connections + 1024, 65_536))
        let ceiling = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8))
            .flatMap { rlim_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? limit.rlim_max
        var raised = rlimit(rlim_cur: min(wanted, ceiling), rlim_max: max(limit.rlim_max, min(wanted, ceiling)))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }

    /// Waits until something accepts on 127.0.0.1:port.
    static func waitUntilListening(_ port: Int, timeout: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let fd = try? connect(port: port, mptcp: false) {
                close(fd)
                return
            }
            usleep(20_000)
        }
        throw Failure("nothing listens on 127.0.0.1:\(port) after \(timeout) s")
    }
}

/// The benchmark's origin: one thread per connection. The first byte chooses the service:
/// "B" streams 256 KiB writes until the client goes away, "E" echoes.
final class BenchOrigin: @unchecked Sendable {
    let port: Int
    private let listener: Int32

    init(mptcp: Bool) throws {
        (listener, port) = try BenchSocket.listen(mptcp: mptcp)
        let listener = self.listener
        Thread {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                Thread { BenchOrigin.serve(fd) }.start()
            }
        }.start()
    }

    private static func serve(_ fd: Int32) {
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var command: UInt8 = 0
        guard recv(fd, &command, 1, 0) == 1 else { return }
        var buffer = [UInt8](repeating: 0x5A, count: 256 * 1024)
        if command == UInt8(ascii: "B") {
            while buffer.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {}
        } else {
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return }
                guard (try? BenchSocket.send(fd, Array(buffer[0..<n]))) != nil else { return }
            }
        }
    }
}
