import Gateway
import NIOCore
import RSerPoolWire
import Testing

/// SOCKS5 UDP ASSOCIATE without sockets: the request in the handshake, the datagram header,
/// and the association's rules (who may send, what goes back).
@Suite struct SOCKS5UDPTests {
    static let client = SOCKS5UDPAssociation.Endpoint(address: .ipv4Loopback, port: 40_000)
    static let anywhere = ProxyDestination(host: .address(.v4(0)), port: 0)

    static func datagram(to destination: ProxyDestination, fragment: UInt8 = 0, payload: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        SOCKS5UDPHeader(fragment: fragment, address: destination).write(to: &buffer)
        buffer.writeString(payload)
        return buffer
    }

    @Test func udpAssociateIsTakenOnlyWhenAllowed() {
        let request: [UInt8] = [5, 1, 0] + [5, 3, 0, 1, 0, 0, 0, 0, 0x9C, 0x40]
        var allowed = SOCKS5ServerHandshake(credentials: nil, allowsUDP: true)
        var input = ByteBuffer(bytes: request)
        #expect(allowed.process(&input) == .send(ByteBuffer(bytes: [5, 0])))
        #expect(allowed.process(&input) == .associate(ProxyDestination(host: .address(.v4(0)), port: 40_000), user: nil))
        let reply = allowed.connected(boundTo: ProxyDestination(host: .address(.ipv4Loopback), port: 5353))
        #expect(Array(reply.readableBytesView) == [5, 0, 0, 1, 127, 0, 0, 1, 0x14, 0xE9])

        var refused = SOCKS5ServerHandshake(credentials: nil)
        input = ByteBuffer(bytes: request)
        _ = refused.process(&input)
        guard case .reject(let answer?, .unsupportedCommand(.udpAssociate)) = refused.process(&input) else {
            Issue.record("UDP ASSOCIATE was not refused")
            return
        }
        #expect(Array(answer.readableBytesView.prefix(2)) == [5, SOCKSReplyCode.commandNotSupported.rawValue])
    }

    @Test func headerRoundTripsForEveryAddressType() throws {
        for destination in [ProxyDestination(host: .address(.v4(0x0A00_0001)), port: 53),
                            ProxyDestination(host: .address(IPAddress("2001:db8::1")!), port: 443),
                            ProxyDestination(host: .name("dns.example"), port: 5353)] {
            var datagram = Self.datagram(to: destination, fragment: 0, payload: "query")
            let header = try SOCKS5UDPHeader.read(from: &datagram)
            #expect(header == SOCKS5UDPHeader(address: destination))
            #expect(datagram.readString(length: datagram.readableBytes) == "query")
        }
    }

    @Test func malformedHeadersAreNamed() {
        func error(_ bytes: [UInt8]) -> SOCKS5UDPHeaderError? {
            var buffer = ByteBuffer(bytes: bytes)
            do { _ = try SOCKS5UDPHeader.read(from: &buffer); return nil } catch { return error }
        }
        #expect(error([0, 0]) == .truncated)
        #expect(error([0, 0, 0, 1, 10, 0]) == .truncated)
        #expect(error([0, 1, 0, 1, 10, 0, 0, 1, 0, 53]) == .nonZeroReserved(1))
        #expect(error([0, 0, 0, 9, 10, 0, 0, 1, 0, 53]) == .unknownAddressType(9))
        #expect(error([0, 0, 0, 3, 0, 0, 53]) == .malformedDomainName)
        #expect(error([0, 0, 0, 3, 3, 0x20, 0x0A, 0x00, 0, 53]) == .malformedDomainName)
        // Empty labels (found by the fuzzer: "a.." became "a." and did not round-trip).
        for name in ["a..b", ".a", "a..", "..", "."] {
            #expect(error([0, 0, 0, 3, UInt8(name.utf8.count)] + Array(name.utf8) + [0, 53]) == .malformedDomainName, "\(name)")
        }
        #expect(ProxyDestination.parseHost("Example.ORG.") == .name("example.org"))
    }

    @Test func onlyTheClientsAddressAndFirstPortAreRelayed() {
        var association = SOCKS5UDPAssociation(client: IPAddress("::ffff:127.0.0.1")!, requested: Self.anywhere)
        let peer = ProxyDestination(host: .address(.v4(0x0A00_0001)), port: 53)
        // Another host, even with the client's port: dropped.
        let stranger = SOCKS5UDPAssociation.Endpoint(address: .v4(0x0A00_0009), port: 40_000)
        #expect(association.fromClient(stranger, datagram: Self.datagram(to: peer, payload: "x")) == .drop(.notFromClient("10.0.0.9:40000")))
        // The client (an IPv4-mapped control connection compares as IPv4): relayed; its port is learnt.
        guard case .relay(let destination, var payload) = association.fromClient(Self.client, datagram: Self.datagram(to: peer, payload: "hello")) else {
            Issue.record("the client's datagram was not relayed")
            return
        }
        #expect(destination == peer && payload.readString(length: payload.readableBytes) == "hello")
        #expect(association.clientPort == 40_000)
        let otherPort = SOCKS5UDPAssociation.Endpoint(address: .ipv4Loopback, port: 40_001)
        #expect(association.fromClient(otherPort, datagram: Self.datagram(to: peer, payload: "x")) == .drop(.notFromClient("127.0.0.1:40001")))
        // A port named in the request is the only one taken, from the first datagram on.
        var named = SOCKS5UDPAssociation(client: .ipv4Loopback, requested: ProxyDestination(host: .address(.v4(0)), port: 40_001))
        #expect(named.fromClient(Self.client, datagram: Self.datagram(to: peer, payload: "x")) == .drop(.notFromClient("127.0.0.1:40000")))
        guard case .relay = named.fromClient(otherPort, datagram: Self.datagram(to: peer, payload: "x")) else {
            Issue.record("the named port was not taken")
            return
        }
    }

    @Test func fragmentsAndBadHeadersAreDroppedWithTheirReason() {
        var association = SOCKS5UDPAssociation(client: .ipv4Loopback, requested: Self.anywhere)
        let peer = ProxyDestination(host: .name("dns.example"), port: 53)
        #expect(association.fromClient(Self.client, datagram: Self.datagram(to: peer, fragment: 1, payload: "x")) == .drop(.fragmented(1)))
        #expect(association.fromClient(Self.client, datagram: ByteBuffer(bytes: [0, 0, 0, 7])) == .drop(.malformed(.unknownAddressType(7))))
        // Drops teach the association nothing: the client's port is still open to learn.
        #expect(association.clientPort == nil)
    }

    @Test func answersComeBackOnlyFromPeersTheClientSentTo() throws {
        var association = SOCKS5UDPAssociation(client: .ipv4Loopback, requested: Self.anywhere)
        let peer = SOCKS5UDPAssociation.Endpoint(address: IPAddress("2001:db8::53")!, port: 53)
        guard case .relay = association.fromClient(Self.client, datagram: Self.datagram(to: ProxyDestination(host: .name("dns.example"), port: 53), payload: "q")) else {
            Issue.record("not relayed")
            return
        }
        // Before anything went to the peer, its datagrams are not let in.
        #expect(association.fromPeer(peer, payload: ByteBuffer(string: "a")) == .drop(.unknownPeer("[2001:db8::53]:53")))
        association.sent(to: peer)
        guard case .deliver(let to, var datagram) = association.fromPeer(peer, payload: ByteBuffer(string: "answer")) else {
            Issue.record("the answer was not delivered")
            return
        }
        #expect(to == Self.client)
        let header = try SOCKS5UDPHeader.read(from: &datagram)
        #expect(header == SOCKS5UDPHeader(address: ProxyDestination(host: .address(peer.address), port: 53)))
        #expect(datagram.readString(length: datagram.readableBytes) == "answer")
        // The same address from another port is another peer.
        #expect(association.fromPeer(SOCKS5UDPAssociation.Endpoint(address: peer.address, port: 54), payload: ByteBuffer(string: "a"))
                == .drop(.unknownPeer("[2001:db8::53]:54")))
        // An answer that cannot carry its header in one datagram is dropped, not cut.
        let big = ByteBuffer(repeating: 1, count: SOCKS5UDPAssociation.maximumDatagram - 10)
        #expect(association.fromPeer(peer, payload: big) == .drop(.oversize(SOCKS5UDPAssociation.maximumDatagram - 10)))
    }

    @Test func thePeerTableIsBoundedAndForgetsTheLeastRecentlyUsed() {
        var association = SOCKS5UDPAssociation(client: .ipv4Loopback, requested: Self.anywhere)
        _ = association.fromClient(Self.client, datagram: Self.datagram(to: ProxyDestination(host: .name("a.example"), port: 1), payload: "x"))
        let first = SOCKS5UDPAssociation.Endpoint(address: .v4(0x0A00_0000), port: 1)
        let second = SOCKS5UDPAssociation.Endpoint(address: .v4(0x0A00_0000), port: 2)
        association.sent(to: first)
        association.sent(to: second)
        // An answer from the first keeps it fresh; then enough new peers to push one out.
        guard case .deliver = association.fromPeer(first, payload: ByteBuffer(string: "a")) else {
            Issue.record("not delivered")
            return
        }
        for port in 3...UInt16(SOCKS5UDPAssociation.maximumPeers + 1) {
            association.sent(to: SOCKS5UDPAssociation.Endpoint(address: .v4(0x0A00_0000), port: port))
        }
        #expect(association.peerCount == SOCKS5UDPAssociation.maximumPeers)
        #expect(association.fromPeer(second, payload: ByteBuffer(string: "a")) == .drop(.unknownPeer("10.0.0.0:2")))
        guard case .deliver = association.fromPeer(first, payload: ByteBuffer(string: "a")) else {
            Issue.record("the recently used peer was forgotten")
            return
        }
    }
}
