import ArgumentParser
import Foundation
import RSerPoolCore

#if canImport(Glibc)
import Glibc
#endif

/// Bulk traffic for testbed scenarios: a sender that streams a deterministic byte pattern
/// (SplitMix64 words) and a receiver that checks every byte against it, so a run can say
/// exactly how many bytes were lost or corrupted, and reports its progress for stall detection.
struct TestbedTraffic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traffic", abstract: "Bulk traffic with byte-exact checking (used by `testbed run`).",
        subcommands: [Serve.self, Fetch.self], defaultSubcommand: nil)

    static let seed: UInt64 = 0xED6E_9001

    /// Fills `buffer` with the pattern from stream offset `offset` (a multiple of 8).
    static func pattern(into buffer: inout [UInt8], from offset: UInt64, generator: inout SplitMix64) {
        precondition(offset % 8 == 0)
        var index = 0
        while index + 8 <= buffer.count {
            let word = generator.next()
            withUnsafeBytes(of: word.littleEndian) { buffer.replaceSubrange(index..<(index + 8), with: $0) }
            index += 8
        }
    }

    static func socket(mptcp: Bool) -> Int32 {
        Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), mptcp ? 262 : 0)
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Accept one receiver and stream the pattern for as long as it asks.")
        @Option var port: Int = 5201
        @Flag var mptcp = false

        func run() throws {
            let listener = TestbedTraffic.socket(mptcp: mptcp)
            var one: Int32 = 1
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0, listen(listener, 4) == 0 else { throw ValidationError("cannot listen on port \(port): errno \(errno)") }
            print("serving on port \(port)")
            fflush(nil)
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { throw ValidationError("accept: errno \(errno)") }
            var request = [UInt8](repeating: 0, count: 8)
            guard recv(fd, &request, 8, Int32(MSG_WAITALL)) == 8 else { throw ValidationError("no duration from the receiver") }
            let milliseconds = request.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            let end = Date().addingTimeInterval(Double(milliseconds) / 1000)
            var generator = SplitMix64(seed: TestbedTraffic.seed)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var sent: UInt64 = 0
            while Date() < end {
                TestbedTraffic.pattern(into: &buffer, from: sent, generator: &generator)
                var offset = 0
                while offset < buffer.count {
                    let n = buffer.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL)) }
                    guard n > 0 else {
                        print("sent \(sent + UInt64(offset)) bytes (connection ended: errno \(errno))")
                        return
                    }
                    offset += n
                }
                sent += UInt64(buffer.count)
            }
            shutdown(fd, Int32(SHUT_WR))
            var drain = [UInt8](repeating: 0, count: 64)
            _ = recv(fd, &drain, 64, 0)   // wait for the receiver to close
            close(fd)
            print("sent \(sent) bytes")
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fetch", abstract: "Receive the pattern for --seconds, check every byte, report progress.")
        @Option(help: "Sender's address:port.") var connect: String
        @Option var seconds: Double = 10
        @Option(help: "Progress line interval in seconds.") var every: Double = 0.1
        @Flag var mptcp = false
        /// How long after the planned end the receiver waits for the sender's end of stream.
        static let grace = 30.0

        func run() throws {
            let parts = connect.split(separator: ":")
            guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--connect wants address:port") }
            let fd = TestbedTraffic.socket(mptcp: mptcp)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr(String(parts[0]))
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard connected == 0 else { throw ValidationError("connect to \(connect): errno \(errno)") }
            let request = withUnsafeBytes(of: UInt64(seconds * 1000).littleEndian, Array.init)
            _ = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, 8, 0) }
            var generator = SplitMix64(seed: TestbedTraffic.seed)
            var expected = [UInt8](repeating: 0, count: 8)
            var expectedIndex = 8
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var received: UInt64 = 0, mismatched: UInt64 = 0
            let start = Date()
            var nextReport = 0.0
            var timeout = timeval(tv_sec: 0, tv_usec: Int(every * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            print("progress 0.000 0")
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                let elapsed = Date().timeIntervalSince(start)
                if n > 0 {
                    for byte in buffer[0..<n] {
                        if expectedIndex == 8 {
                            withUnsafeBytes(of: generator.next().littleEndian) { expected = Array($0) }
                            expectedIndex = 0
                        }
                        if byte != expected[expectedIndex] { mismatched += 1 }
                        expectedIndex += 1
                    }
                    received += UInt64(n)
                } else if n == 0 {
                    break
                } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    print("error errno \(errno)")
                    break
                }
                if elapsed > seconds + Self.grace {
                    print("stopped: no end of stream \(Self.grace) s after the run")
                    break
                }
                if elapsed >= nextReport {
                    print(String(format: "progress %.3f %llu", elapsed, received))
                    fflush(nil)
                    nextReport = elapsed + every
                }
            }
            close(fd)
            print(String(format: "progress %.3f %llu", Date().timeIntervalSince(start), received))
            print("received \(received) bytes, mismatched \(mismatched)")
        }
    }
}
