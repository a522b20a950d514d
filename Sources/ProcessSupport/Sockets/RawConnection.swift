import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import RSerPoolWire

/// A plain blocking TCP socket to 127.0.0.1 for clients that misbehave on purpose — partial
/// messages, floods, never reading — in the live tests and `edgepool bench abuse`. Every
/// receive has a time bound; the socket is closed when the object goes away.
public final class RawConnection: @unchecked Sendable {
    public let fd: Int32

    /// Connects; `receiveBuffer` shrinks SO_RCVBUF first (a client that reads little);
    /// `source` binds a local address first (127.0.0.2: another client).
    public init(port: Int, receiveBuffer: Int? = nil, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessSupportError("socket() failed: errno \(errno)") }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw ProcessSupportError("connect to \(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// The local port (the one the peer sees).
    public var localPort: Int {
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: local.sin_port))
    }

    /// Sends what the socket takes without blocking; returns the bytes sent.
    @discardableResult
    public func sendSome(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
    }

    /// Sends all of `bytes` (blocking).
    public func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ProcessSupportError("send failed: errno \(errno)") }
            offset += n
        }
    }

    public func send(_ message: ASAPMessage, times: Int = 1) throws {
        var buffer = ByteBuffer()
        for _ in 0..<times { buffer.writeASAPMessage(message) }
        try sendAll(Array(buffer: buffer))
    }

    /// Reads for up to `seconds`; returns the bytes and whether the peer closed.
    public func receive(for seconds: Double, until enough: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = Date().addingTimeInterval(seconds)
        var timeout = timeval(tv_sec: 0, tv_usec: Int(min(seconds, 0.1) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while Date() < deadline {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n > 0 {
                received.append(contentsOf: chunk[0..<n])
                if enough(received) { return (received, false) }
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return (received, true)
            }
        }
        return (received, false)
    }

    /// Reads ASAP messages until `count` are in or `seconds` pass.
    public func receiveMessages(_ count: Int, within seconds: Double) -> [ASAPMessage] {
        var messages: [ASAPMessage] = []
        var buffer = ByteBuffer()
        _ = receive(for: seconds) { bytes in
            buffer.clear()
            buffer.writeBytes(bytes)
            messages = []
            while let frame = try? RSerPoolFraming.nextFrame(from: &buffer),
                  let decoded = try? ASAPMessage.decode(frame: frame, limits: WireLimits(maximumPoolHandleLength: 65_535)) {
                messages.append(decoded.message)
            }
            return messages.count >= count
        }
        return messages
    }
}
