import NIOCore
import NIOEmbedded
import Testing
@testable import CalcAppService

/// The delay relay's forwarding handler between two EmbeddedChannels on virtual time.
@Suite("Delay relay on NIOEmbedded")
struct DelayingForwarderEmbeddedTests {
    @Test func bytesArriveAfterTheDelayAndTheCloseFollowsTheData() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), target = EmbeddedChannel(loop: loop)
        try client.pipeline.syncOperations.addHandler(DelayingForwarder(peer: target, delay: .milliseconds(20)))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try target.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try client.writeInbound(ByteBuffer(string: "job 1"))
        loop.advanceTime(by: .milliseconds(19))
        #expect(try target.readOutbound(as: ByteBuffer.self) == nil, "not before the delay")
        loop.advanceTime(by: .milliseconds(1))
        #expect(try target.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "job 1")
        try client.writeInbound(ByteBuffer(string: "last"))
        try client.close().wait()
        loop.advanceTime(by: .milliseconds(20))
        #expect(try target.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "last", "data in flight is delivered")
        #expect(!target.isActive, "and then the close")
    }

    @Test func withoutADelayBytesPassAtOnce() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), target = EmbeddedChannel(loop: loop)
        try client.pipeline.syncOperations.addHandler(DelayingForwarder(peer: target, delay: .zero))
        try target.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try client.writeInbound(ByteBuffer(string: "now"))
        #expect(try target.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "now")
    }
}
