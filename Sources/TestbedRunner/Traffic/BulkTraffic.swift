import Foundation
import RSerPoolCore

#if canImport(Glibc)
import Glibc
#endif

/// Bulk traffic: a sender that streams a deterministic byte pattern (SplitMix64 words) and a
/// receiver that checks every byte against it, so a run can say exactly how many bytes were
/// lost or corrupted, and reports its progress for stall detection.
extension TestbedTraffic {
    public struct Serve {
        public var listening: Listener

        public init(listening: Listener) { self.listening = listening }

        public func run() throws {
            let fd = try listening.acceptOne()
            var request = [UInt8](repeating: 0, count: 8)
            guard recv(fd, &request, 8, Int32(MSG_WAITALL)) == 8 else { throw TestbedError("no duration from the receiver") }
            let milliseconds = request.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            let end = Date().addingTimeInterval(Double(milliseconds) / 1000)
            var generator = SplitMix64(seed: TestbedTraffic.seed)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var sent: UInt64 = 0
            while Date() < end {
                TestbedTraffic.pattern(into: &buffer, generator: &generator)
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

    public struct Fetch {
        public var target: Target
        /// Progress line interval in seconds.
        public var every: Double = 0.1
        /// How long after the planned end the receiver waits for the sender's end of stream.
        static let grace = 30.0

        public init(target: Target, every: Double = 0.1) {
            self.target = target
            self.every = every
        }

        public func run() throws {
            let seconds = target.seconds
            let fd = try TestbedTraffic.connect(to: target.connect, mptcp: target.mptcp)
            let request = withUnsafeBytes(of: UInt64(seconds * 1000).littleEndian, Array.init)
            _ = TestbedTraffic.sendAll(fd, request)
            var generator = SplitMix64(seed: TestbedTraffic.seed)
            var expected = [UInt8](repeating: 0, count: 8)
            var expectedIndex = 8
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var received: UInt64 = 0, mismatched: UInt64 = 0
            let start = Date()
            let origin = target.origin(started: start)
            var nextReport = 0.0
            var timeout = timeval(tv_sec: 0, tv_usec: Int(every * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            TestbedTraffic.reportProgress(start.timeIntervalSince(origin), 0)
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
                    TestbedTraffic.reportProgress(Date().timeIntervalSince(origin), received)
                    nextReport = elapsed + every
                }
            }
            close(fd)
            TestbedTraffic.reportProgress(Date().timeIntervalSince(origin), received)
            print("received \(received) bytes, mismatched \(mismatched)")
        }
    }
}
