import NIOCore
import NIOEmbedded
import Testing
@testable import GatewayService

/// The idle timeout of relayed connections (`IdleSweep`) on an `EmbeddedEventLoop`: a relay
/// between two EmbeddedChannels, time advanced by hand.
@Suite struct IdleSweepEmbeddedTests {
    private struct Relay {
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let sweep: IdleSweep

        init(timeout: TimeAmount, id: UInt64 = 1) throws {
            client = EmbeddedChannel(loop: loop)
            upstream = EmbeddedChannel(loop: loop)
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
            try client.connect(to: address).wait()
            try upstream.connect(to: address).wait()
            sweep = IdleSweep(loop: loop, timeout: timeout)
            let connection = GatewayConnection(id: id, mode: "test", client: client, clientMayBeMPTCP: false, upstreamMayBeMPTCP: false) { _, _ in }
            try RelayHandler.join(client: client, upstream: upstream, connection: connection, idleSweep: sweep)
        }

        var open: Bool { client.isActive && upstream.isActive }
    }

    @Test func aRelayWithoutReadsClosesAfterTheTimeoutAndNotBefore() throws {
        let relay = try Relay(timeout: .seconds(3))
        #expect(relay.sweep.interval == .milliseconds(300), "a tenth of the timeout")
        relay.loop.advanceTime(by: .seconds(3))
        #expect(relay.open, "not closed at the timeout itself")
        relay.loop.advanceTime(by: .milliseconds(300))
        #expect(!relay.open, "closed within one interval after it")
        #expect(relay.sweep.tracked == 0)
    }

    @Test func readsOnEitherSideKeepTheRelayOpen() throws {
        let relay = try Relay(timeout: .seconds(3))
        for second in 1...10 {
            relay.loop.advanceTime(by: .seconds(1))
            let side = second.isMultiple(of: 2) ? relay.client : relay.upstream
            try side.writeInbound(ByteBuffer(string: "tick \(second)"))
            #expect(relay.open, "second \(second)")
        }
        // What was read crossed the relay.
        #expect(try relay.upstream.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "tick 2")
        #expect(try relay.client.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "tick 1")
        relay.loop.advanceTime(by: .milliseconds(3_000))
        #expect(relay.open, "3 s after the last read")
        relay.loop.advanceTime(by: .milliseconds(600))
        #expect(!relay.open)
    }

    @Test func aClosedRelayLeavesTheSweepAndItsTimerStops() throws {
        let relay = try Relay(timeout: .seconds(300))
        #expect(relay.sweep.interval == IdleSweep.longestInterval)
        #expect(relay.sweep.tracked == 1)
        try relay.client.close().wait()
        relay.loop.run()
        #expect(!relay.upstream.isActive, "the other side closes with it")
        #expect(relay.sweep.tracked == 0)
        // One more sweep finds nothing and does not schedule another: ticks stop.
        relay.loop.advanceTime(by: .seconds(1))
        let ticks = relay.sweep.tick
        relay.loop.advanceTime(by: .seconds(10))
        #expect(relay.sweep.tick == ticks)
    }

    @Test func aSideClosedBeforeTheRelayEndsTheOtherAndLeavesNoSweepEntry() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let upstream = EmbeddedChannel(loop: loop)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try upstream.close().wait()
        let sweep = IdleSweep(loop: loop, timeout: .seconds(3))
        let connection = GatewayConnection(id: 7, mode: "test", client: client, clientMayBeMPTCP: false, upstreamMayBeMPTCP: false) { _, _ in }
        try RelayHandler.join(client: client, upstream: upstream, connection: connection, idleSweep: sweep)
        loop.run()
        #expect(!client.isActive, "the client is closed with the upstream that closed first")
        #expect(sweep.tracked == 0)
    }

    @Test func intervalsAreBounded() {
        let loop = EmbeddedEventLoop()
        #expect(IdleSweep(loop: loop, timeout: .milliseconds(20)).interval == IdleSweep.shortestInterval)
        #expect(IdleSweep(loop: loop, timeout: .seconds(5)).interval == .milliseconds(500))
        #expect(IdleSweep(loop: loop, timeout: .hours(1)).interval == IdleSweep.longestInterval)
    }
}
