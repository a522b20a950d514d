import Foundation
import RSerPoolCore
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// Request/response traffic: the receiver sends a request (sequence u32, response size u32,
/// little-endian) every interval and waits for the response, a pattern derived from the
/// sequence number that it checks; one line per request with its latency.
extension TestbedTraffic {
    static func responsePattern(sequence: UInt32, size: Int) -> [UInt8] {
        var generator = SplitMix64(seed: seed ^ UInt64(sequence) << 20)
        var bytes = [UInt8](repeating: 0, count: (size + 7) / 8 * 8)
        pattern(into: &bytes, generator: &generator)
        return Array(bytes.prefix(size))
    }

    public struct Respond {
        public var listening: Listener

        public init(listening: Listener) { self.listening = listening }

        public func run() throws {
            let fd = try listening.acceptOne()
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var header = [UInt8](repeating: 0, count: 8)
            var answered = 0, bytes: UInt64 = 0
            while recv(fd, &header, 8, Int32(MSG_WAITALL)) == 8 {
                let sequence = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                let size = header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) }
                guard size <= ScenarioParser.maximumResponseBytes else {
                    print("refused: request \(sequence) asks for \(size) bytes (at most \(ScenarioParser.maximumResponseBytes))")
                    break
                }
                guard TestbedTraffic.sendAll(fd, TestbedTraffic.responsePattern(sequence: sequence, size: size)) else { break }
                answered += 1
                bytes += UInt64(size)
            }
            close(fd)
            print("answered \(answered) requests, \(bytes) bytes")
        }
    }

    public struct Request {
        public var target: Target
        /// Response size in bytes.
        public var size: Int = 1000
        /// Seconds between requests (a late response delays the next request).
        public var every: Double = 0.1

        public init(target: Target, size: Int = 1000, every: Double = 0.1) {
            self.target = target
            self.size = size
            self.every = every
        }

        public func run() throws {
            guard (1...ScenarioParser.maximumResponseBytes).contains(size) else { throw TestbedError("--size must be 1…\(ScenarioParser.maximumResponseBytes)") }
            let seconds = target.seconds
            let fd = try TestbedTraffic.connect(to: target.connect, mptcp: target.mptcp)
            var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let start = Date()
            let origin = target.origin(started: start)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var sequence: UInt32 = 0, issued = 0, answered = 0, mismatched = 0
            var received: UInt64 = 0
            var next = start
            TestbedTraffic.reportProgress(start.timeIntervalSince(origin), 0)
            requests: while Date().timeIntervalSince(start) < seconds {
                let wait = next.timeIntervalSinceNow
                if wait > 0 { usleep(useconds_t(wait * 1e6)) }
                let sent = Date()
                next = max(next.addingTimeInterval(every), sent)
                var header = withUnsafeBytes(of: sequence.littleEndian, Array.init)
                header += withUnsafeBytes(of: UInt32(size).littleEndian, Array.init)
                guard TestbedTraffic.sendAll(fd, header) else { print("error: connection ended at request \(sequence)"); break }
                issued += 1
                let expected = TestbedTraffic.responsePattern(sequence: sequence, size: size)
                var got = 0
                while got < size {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, size - got), 0) }
                    if n > 0 {
                        for index in 0..<n where buffer[index] != expected[got + index] { mismatched += 1 }
                        got += n
                        received += UInt64(n)
                    } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        print("error: connection ended waiting for response \(sequence)")
                        break requests
                    }
                    if Date().timeIntervalSince(start) > seconds + Fetch.grace {
                        print("stopped: no response to request \(sequence) \(Fetch.grace) s after the run")
                        break requests
                    }
                    if n <= 0 { TestbedTraffic.reportProgress(Date().timeIntervalSince(origin), received) }
                }
                let now = Date()
                print(String(format: "request %.3f %.3f", sent.timeIntervalSince(origin), now.timeIntervalSince(sent) * 1000))
                TestbedTraffic.reportProgress(now.timeIntervalSince(origin), received)
                answered += 1
                sequence &+= 1
            }
            close(fd)
            print("requests \(issued) answered \(answered) mismatched \(mismatched)")
        }
    }
}
