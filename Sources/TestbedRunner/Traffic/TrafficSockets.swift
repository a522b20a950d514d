import Foundation
import ProcessSupport
import RSerPoolCore

#if canImport(Glibc)
import Glibc
#endif

/// The traffic `testbed run` starts on the hosts of a scenario, one pair of subcommands per
/// kind: the sender listens, the receiver connects and reports what it saw as lines on stdout
/// (`progress SECONDS BYTES` for stall detection, a summary at the end).
public enum TestbedTraffic {
    static let seed: UInt64 = 0xED6E_9001

    /// Where a receiver connects, for how long, and on whose clock it reports.
    public struct Target {
        /// The sender's address:port ([v6]:port).
        public var connect: String
        /// Seconds of traffic (the receiver gives up 30 s after that).
        public var seconds: Double = 10
        /// Report times since this Unix time (the runner's start) instead of since this process's start.
        public var epoch: Double?
        /// Connect with MPTCP.
        public var mptcp = false

        public init(connect: String, seconds: Double = 10, epoch: Double? = nil, mptcp: Bool = false) {
            self.connect = connect
            self.seconds = seconds
            self.epoch = epoch
            self.mptcp = mptcp
        }

        /// Time zero of the progress lines.
        func origin(started: Date) -> Date { epoch.map { Date(timeIntervalSince1970: $0) } ?? started }
    }

    /// Where a sender listens.
    public struct Listener {
        public var port: Int = 5201
        /// Listen on every address of this family: 0.0.0.0 or ::.
        public var listen = "0.0.0.0"
        /// Listen with MPTCP (plain TCP clients are accepted too).
        public var mptcp = false

        public init(port: Int = 5201, listen: String = "0.0.0.0", mptcp: Bool = false) {
            self.port = port
            self.listen = listen
            self.mptcp = mptcp
        }

        /// Listens, says so on stdout (the runner waits for the line), accepts one connection.
        /// The listener stays open: MPTCP's MP_JOINs for further subflows need it.
        func acceptOne() throws -> Int32 {
            let listener = try TestbedTraffic.listen(on: listen, port: port, mptcp: mptcp)
            ReadyLine(daemon: "traffic", ["port": "\(port)"]).announce()
            fflush(nil)
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { throw TestbedError("accept: errno \(errno)") }
            return fd
        }
    }

    /// Fills `buffer` with the pattern's next words.
    static func pattern(into buffer: inout [UInt8], generator: inout SplitMix64) {
        var index = 0
        while index + 8 <= buffer.count {
            let word = generator.next()
            withUnsafeBytes(of: word.littleEndian) { buffer.replaceSubrange(index..<(index + 8), with: $0) }
            index += 8
        }
    }

    /// A socket address from "a.b.c.d", "::1" or "fe80::1" and a port.
    static func socketAddress(_ host: String, port: UInt16) throws -> (storage: sockaddr_storage, length: socklen_t) {
        var storage = sockaddr_storage()
        if host.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { throw TestbedError("'\(host)' is not an IPv6 address") }
            withUnsafeBytes(of: address) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw TestbedError("'\(host)' is not an IPv4 address") }
        withUnsafeBytes(of: address) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size))
    }

    /// "host:port" or "[v6]:port".
    static func splitHostPort(_ text: String) throws -> (String, UInt16) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            guard text[close...].hasPrefix("]:"), let port = UInt16(text[text.index(close, offsetBy: 2)...]) else { throw TestbedError("'\(text)' is not [address]:port") }
            return (host, port)
        }
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { throw TestbedError("'\(text)' is not address:port") }
        return (String(text[..<colon]), port)
    }

    /// "[v6]:port" for IPv6 addresses, "a.b.c.d:port" otherwise.
    static func joinHostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// A listening socket on every address of the family of `any` ("0.0.0.0" or "::").
    static func listen(on any: String, port: Int, mptcp: Bool) throws -> Int32 {
        let (storage, length) = try socketAddress(any, port: UInt16(port))
        let fd = Glibc.socket(Int32(storage.ss_family), Int32(SOCK_STREAM.rawValue), mptcp ? 262 : 0)
        guard fd >= 0 else { throw TestbedError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var copy = storage
        let bound = withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else { throw TestbedError("cannot listen on port \(port): errno \(errno)") }
        return fd
    }

    /// A connected socket with TCP_NODELAY.
    static func connect(to text: String, mptcp: Bool) throws -> Int32 {
        let (host, port) = try splitHostPort(text)
        var (storage, length) = try socketAddress(host, port: port)
        let fd = Glibc.socket(Int32(storage.ss_family), Int32(SOCK_STREAM.rawValue), mptcp ? 262 : 0)
        guard fd >= 0 else { throw TestbedError("socket: errno \(errno)") }
        let connected = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        guard connected == 0 else { throw TestbedError("connect to \(text): errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// Sends all of `bytes`; false when the connection ended.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// A progress line for stall detection, flushed at once (the runner reads it live).
    static func reportProgress(_ seconds: Double, _ bytes: UInt64) {
        print(String(format: "progress %.3f %llu", seconds, bytes))
        fflush(nil)
    }
}
