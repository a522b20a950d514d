import Gateway
import NIOCore
import NIOEmbedded
import Testing
@testable import GatewayService
import RSerPool
import RSerPoolWire

/// The SOCKS5 UDP relay on an `EmbeddedEventLoop`: the association is opened by the SOCKS5
/// frontend as on a real socket; its UDP sockets are EmbeddedChannels.
private struct UDPHarness {
    let frontend: FrontendHarness
    let client = try! SocketAddress(ipAddress: "127.0.0.1", port: 40_001)
    let peer = try! SocketAddress(ipAddress: "203.0.113.5", port: 53)

    /// A SOCKS5 client that has opened a UDP association; the relay's reply is checked.
    init(_ settings: GatewaySettings = GatewaySettings()) throws {
        frontend = try FrontendHarness(.socks, settings)
        try frontend.send([5, 1, 0])
        #expect(try frontend.replies() == [5, 0])
        try frontend.send([5, 3, 0, 1, 0, 0, 0, 0, 0, 0])   // UDP ASSOCIATE, the client's address not known yet
        frontend.loop.run()
        // VER REP RSV ATYP 127.0.0.1 port 50000: the relay socket on the address the client reached.
        #expect(try frontend.replies() == [5, 0, 0, 1, 127, 0, 0, 1, 0xC3, 0x50])
    }

    var clientFacing: EmbeddedChannel { frontend.datagramSockets.channels[0] }
    var outward: EmbeddedChannel? { frontend.datagramSockets.channels.dropFirst().first }

    /// A datagram from the client to `destination` (IPv4), with the SOCKS5 UDP header.
    func fromClient(to destination: SocketAddress, _ payload: String, fragment: UInt8 = 0) throws {
        let ip = try #require(IPAddress(destination.ipAddress ?? ""))
        guard case .v4(let value) = ip else { Issue.record("IPv4 only here"); return }
        let port = UInt16(destination.port ?? 0)
        var datagram = ByteBuffer(bytes: [0, 0, fragment, 1])
        datagram.writeInteger(value)
        datagram.writeInteger(port)
        datagram.writeString(payload)
        try clientFacing.writeInbound(AddressedEnvelope(remoteAddress: client, data: datagram))
        frontend.loop.run()
    }

    func written(on channel: EmbeddedChannel?) throws -> [AddressedEnvelope<ByteBuffer>] {
        var envelopes: [AddressedEnvelope<ByteBuffer>] = []
        while let channel, let envelope = try channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) { envelopes.append(envelope) }
        return envelopes
    }
}

@Suite("SOCKS5 UDP relay on NIOEmbedded")
struct SOCKS5UDPRelayEmbeddedTests {
    @Test func aDatagramGoesOutWithoutItsHeaderAndTheAnswerComesBackWithOne() throws {
        let h = try UDPHarness()
        try h.fromClient(to: h.peer, "ping")
        let out = try h.written(on: h.outward)
        #expect(out.map(\.remoteAddress) == [h.peer])
        #expect(out.first.map { String(buffer: $0.data) } == "ping")

        try #require(h.outward).writeInbound(AddressedEnvelope(remoteAddress: h.peer, data: ByteBuffer(string: "pong")))
        let back = try h.written(on: h.clientFacing)
        #expect(back.map(\.remoteAddress) == [h.client])
        #expect(back.first.map { Array(buffer: $0.data) } == [0, 0, 0, 1, 203, 0, 113, 5, 0, 53] + Array("pong".utf8))
    }

    @Test func answersFromPeersTheClientDidNotSendToAreDropped() throws {
        let h = try UDPHarness()
        try h.fromClient(to: h.peer, "ping")
        _ = try h.written(on: h.outward)
        let stranger = try SocketAddress(ipAddress: "203.0.113.9", port: 53)
        try #require(h.outward).writeInbound(AddressedEnvelope(remoteAddress: stranger, data: ByteBuffer(string: "spoofed")))
        #expect(try h.written(on: h.clientFacing).isEmpty)
    }

    @Test func datagramsFromAnotherHostThanTheClientAreDropped() throws {
        let h = try UDPHarness()
        let other = try SocketAddress(ipAddress: "127.0.0.2", port: 40_001)
        var datagram = ByteBuffer(bytes: [0, 0, 0, 1, 203, 0, 113, 5, 0, 53])
        datagram.writeString("ping")
        try h.clientFacing.writeInbound(AddressedEnvelope(remoteAddress: other, data: datagram))
        h.frontend.loop.run()
        #expect(h.outward == nil, "no outward socket is opened for a stranger's datagram")
    }

    @Test func aPrivateDestinationAndFragmentsAreRefused() throws {
        let h = try UDPHarness()
        try h.fromClient(to: try SocketAddress(ipAddress: "10.0.0.1", port: 53), "into the LAN")
        try h.fromClient(to: h.peer, "part 1", fragment: 1)
        #expect(try h.written(on: h.outward).isEmpty)
    }

    @Test func anIdleAssociationEndsWithItsControlConnection() throws {
        var settings = GatewaySettings()
        settings.idleTimeout = SettingDuration(.seconds(4))
        let h = try UDPHarness(settings)
        try h.fromClient(to: h.peer, "ping")
        h.frontend.loop.advanceTime(by: .seconds(3))
        #expect(h.frontend.client.isActive)
        h.frontend.loop.advanceTime(by: .seconds(3))
        #expect(!h.frontend.client.isActive, "no datagram for more than the idle timeout closes the control connection")
        #expect(!h.clientFacing.isActive)
    }
}
