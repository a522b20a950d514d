import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The UDP part of the gateway benchmark: datagrams through a SOCKS5 UDP association of
/// `edgepool gateway socks` against datagrams sent straight to the origin, in the same run.
enum BenchUDP {
    struct Measurement {
        var rttMicroseconds: Double
        var datagramsPerSecond: Double
        var payloadBytes: Int
        var lost: Int
        var rateText: String {
            String(format: "%8.0f datagrams/s (%.2f Gbit/s)", datagramsPerSecond, datagramsPerSecond * Double(payloadBytes) * 8 / 1e9)
        }
    }

    /// Where datagrams go: straight to the origin, or to a relay with a SOCKS5 UDP header.
    struct Path {
        let fd: Int32
        /// The header put in front of every payload (empty when direct).
        let header: [UInt8]
        /// The SOCKS5 control connection that keeps the association open (-1 when direct).
        let control: Int32

        func close() {
            Glibc.close(fd)
            if control >= 0 { Glibc.close(control) }
        }
    }

    /// A UDP echo origin on a thread (answers every datagram with itself).
    final class EchoOrigin: @unchecked Sendable {
        let port: Int

        init() throws {
            let fd = try BenchUDP.boundSocket()
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = Int(UInt16(bigEndian: address.sin_port))
            Thread {
                var buffer = [UInt8](repeating: 0, count: 65_536)
                var peer = sockaddr_storage()
                while true {
                    var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let n = buffer.withUnsafeMutableBytes { bytes in
                        withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &peerLength) } }
                    }
                    guard n >= 0 else { if errno == EINTR { continue } else { return } }
                    _ = buffer.withUnsafeBytes { bytes in
                        withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, n, 0, $0, peerLength) } }
                    }
                }
            }.start()
        }
    }

    static func boundSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw BenchSocket.Failure("socket: errno \(errno)") }
        var address = BenchSocket.loopback(0)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(fd); throw BenchSocket.Failure("bind: errno \(errno)") }
        return fd
    }

    static func connectedSocket(to port: Int) throws -> Int32 {
        let fd = try boundSocket()
        var address = BenchSocket.loopback(port)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { close(fd); throw BenchSocket.Failure("connect: errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func direct(to origin: Int) throws -> Path {
        Path(fd: try connectedSocket(to: origin), header: [], control: -1)
    }

    /// SOCKS5 (no authentication) UDP ASSOCIATE on the gateway at `port`; the datagram socket
    /// talks to the relay it names, each payload headed for 127.0.0.1:origin.
    static func associated(gateway port: Int, origin: Int) throws -> Path {
        let control = try BenchSocket.connect(port: port, mptcp: false)
        var reply = [UInt8](repeating: 0, count: 10)
        do {
            try BenchSocket.send(control, [5, 1, 0])
            try BenchSocket.receive(control, exactly: 2, into: &reply)
            try BenchSocket.send(control, [5, 3, 0, 1, 0, 0, 0, 0, 0, 0])
            try BenchSocket.receive(control, exactly: 10, into: &reply)
            guard reply[1] == 0, reply[3] == 1 else { throw BenchSocket.Failure("UDP ASSOCIATE refused: reply \(reply[1])") }
            let relayPort = Int(reply[8]) << 8 | Int(reply[9])
            let header: [UInt8] = [0, 0, 0, 1, 127, 0, 0, 1, UInt8(origin >> 8), UInt8(origin & 0xFF)]
            return Path(fd: try connectedSocket(to: relayPort), header: header, control: control)
        } catch {
            close(control)
            throw error
        }
    }

    /// Round trips of 64-byte payloads, then `seconds` of 1,400-byte payloads with up to
    /// `window` in flight (a datagram lost to a full queue shrinks the window until a 200 ms
    /// timeout refills it).
    static func measure(_ path: Path, rounds: Int, seconds: Double, window: Int = 32) -> Measurement {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        func send(_ payloadSize: Int) -> Bool {
            let datagram = path.header + [UInt8](repeating: 7, count: payloadSize)
            return datagram.withUnsafeBytes { Glibc.send(path.fd, $0.baseAddress, $0.count, 0) } == datagram.count
        }
        func receive() -> Bool {
            buffer.withUnsafeMutableBytes { recv(path.fd, $0.baseAddress, $0.count, 0) } > 0
        }
        var rtts: [Double] = []
        var lost = 0
        for _ in 0..<rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard send(64) else { lost += 1; continue }
            if receive() { rtts.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000) } else { lost += 1 }
        }
        let payload = 1400
        var received = 0
        var inFlight = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            while inFlight < window, send(payload) { inFlight += 1 }
            if receive() {
                received += 1
                inFlight -= 1
            } else {
                lost += inFlight
                inFlight = 0
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        while inFlight > 0, receive() { inFlight -= 1 }
        rtts.sort()
        return Measurement(rttMicroseconds: rtts.isEmpty ? .nan : rtts[rtts.count / 2], datagramsPerSecond: Double(received) / elapsed,
                           payloadBytes: payload, lost: lost + inFlight)
    }
}
