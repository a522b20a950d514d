import Gateway
import NIOCore
import Testing

@Suite struct PairHeaderTests {
    let secret = try! PairSecret("correct horse battery staple")
    let nonce = [UInt8](repeating: 7, count: 16)
    let destination = ProxyDestination(host: .name("example.org"), port: 443)

    @Test func roundTripLeavesTheClientBytes() throws {
        var buffer = PairHeader(destination: destination, timeMilliseconds: 1_000_000, nonce: nonce).encoded(secret: secret)
        buffer.writeString("GET /")
        var guard_ = PairReplayGuard()
        let header = try PairHeader.read(from: &buffer, secret: secret, nowMilliseconds: 1_000_500, replayGuard: &guard_)
        #expect(header?.destination == destination)
        #expect(buffer.readString(length: buffer.readableBytes) == "GET /")
    }

    @Test func partialHeaderNeedsMoreAndConsumesNothing() throws {
        let full = PairHeader(destination: destination, timeMilliseconds: 5, nonce: nonce).encoded(secret: secret)
        var guard_ = PairReplayGuard()
        for length in [0, 3, 10, 40, full.readableBytes - 1] {
            var partial = full.getSlice(at: 0, length: length)!
            #expect(try PairHeader.read(from: &partial, secret: secret, nowMilliseconds: 5, replayGuard: &guard_) == nil)
            #expect(partial.readableBytes == length)
        }
    }

    @Test func wrongSecretTamperingStaleAndReplayAreRefused() throws {
        let encoded = PairHeader(destination: destination, timeMilliseconds: 100_000, nonce: nonce).encoded(secret: secret)
        var guard_ = PairReplayGuard()
        var wrongKey = encoded
        #expect(throws: PairHeaderError.badTag) {
            try PairHeader.read(from: &wrongKey, secret: try PairSecret("another secret of enough length"), nowMilliseconds: 100_000, replayGuard: &guard_)
        }
        var tampered = encoded
        tampered.setInteger(UInt16(444), at: tampered.writerIndex - 34)   // the port
        #expect(throws: PairHeaderError.badTag) { try PairHeader.read(from: &tampered, secret: secret, nowMilliseconds: 100_000, replayGuard: &guard_) }
        var stale = encoded
        #expect(throws: PairHeaderError.stale(skewMilliseconds: 31_000)) {
            try PairHeader.read(from: &stale, secret: secret, nowMilliseconds: 131_000, replayGuard: &guard_)
        }
        var first = encoded, second = encoded
        _ = try PairHeader.read(from: &first, secret: secret, nowMilliseconds: 100_000, replayGuard: &guard_)
        #expect(throws: PairHeaderError.replayed) { try PairHeader.read(from: &second, secret: secret, nowMilliseconds: 100_001, replayGuard: &guard_) }
        var garbage = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        #expect(throws: PairHeaderError.notAPairHeader) { try PairHeader.read(from: &garbage, secret: secret, nowMilliseconds: 0, replayGuard: &guard_) }
    }

    @Test func replayTableForgetsNoncesOutsideTheWindow() throws {
        var guard_ = PairReplayGuard()
        for index in 0..<100 {
            var nonce = [UInt8](repeating: 0, count: 16)
            nonce[0] = UInt8(index)
            var buffer = PairHeader(destination: destination, timeMilliseconds: UInt64(index) * 1000, nonce: nonce).encoded(secret: secret)
            _ = try PairHeader.read(from: &buffer, secret: secret, nowMilliseconds: UInt64(index) * 1000, replayGuard: &guard_)
        }
        #expect(guard_.count <= 32)
    }

    @Test func shortSecretIsRefused() {
        #expect(throws: PairHeaderError.secretTooShort) { try PairSecret("short") }
    }
}
