import Gateway
import NIOCore
import RSerPoolWire
import Testing

@Suite struct SOCKS5HandshakeTests {
    @Test func noAuthenticationConnectWithDomainName() {
        var handshake = SOCKS5ServerHandshake(credentials: nil)
        var input = ByteBuffer(bytes: [5, 2, 0, 2])
        #expect(handshake.process(&input) == .send(ByteBuffer(bytes: [5, 0])))
        #expect(handshake.process(&input) == .needMoreData)
        input.writeBytes([5, 1, 0, 3, 11] + Array("example.org".utf8) + [0x01, 0xBB])
        input.writeString("early data")
        let destination = ProxyDestination(host: .name("example.org"), port: 443)
        #expect(handshake.process(&input) == .connect(destination, user: nil))
        #expect(input.readString(length: input.readableBytes) == "early data")
        let reply = handshake.connected(boundTo: ProxyDestination(host: .address(.v4(0x7F00_0001)), port: 1080))
        #expect(Array(reply.readableBytesView) == [5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38])
    }

    @Test func byteByByteDeliveryGivesTheSameResult() {
        let bytes: [UInt8] = [5, 1, 0] + [5, 1, 0, 4] + IPAddress("2001:db8::7")!.bytes + [0, 80]
        var handshake = SOCKS5ServerHandshake(credentials: nil)
        var input = ByteBuffer()
        var actions: [SOCKS5ServerHandshake.Action] = []
        for byte in bytes {
            input.writeInteger(byte)
            while true {
                let action = handshake.process(&input)
                if action == .needMoreData { break }
                actions.append(action)
                if case .connect = action { break }
            }
        }
        #expect(actions == [.send(ByteBuffer(bytes: [5, 0])), .connect(ProxyDestination(host: .address(IPAddress("2001:db8::7")!), port: 80), user: nil)])
    }

    @Test func usernamePasswordAcceptsTheRightPasswordOnly() {
        let credentials = ProxyCredentials(["alice": "s3cret"])
        var good = SOCKS5ServerHandshake(credentials: credentials)
        var input = ByteBuffer(bytes: [5, 1, 2, 1, 5] + Array("alice".utf8) + [6] + Array("s3cret".utf8) + [5, 1, 0, 1, 10, 0, 0, 1, 0, 22])
        #expect(good.process(&input) == .send(ByteBuffer(bytes: [5, 2])))
        #expect(good.process(&input) == .send(ByteBuffer(bytes: [1, 0])))
        #expect(good.process(&input) == .connect(ProxyDestination(host: .address(.v4(0x0A00_0001)), port: 22), user: "alice"))

        var bad = SOCKS5ServerHandshake(credentials: credentials)
        var wrong = ByteBuffer(bytes: [5, 1, 2, 1, 5] + Array("alice".utf8) + [6] + Array("s3creT".utf8))
        _ = bad.process(&wrong)
        #expect(bad.process(&wrong) == .reject(ByteBuffer(bytes: [1, 1]), .authenticationFailed(user: "alice")))
    }

    @Test func clientWithoutTheRequiredMethodGetsNoAcceptableMethods() {
        var handshake = SOCKS5ServerHandshake(credentials: ProxyCredentials(["a": "b"]))
        var input = ByteBuffer(bytes: [5, 1, 0])
        #expect(handshake.process(&input) == .reject(ByteBuffer(bytes: [5, 0xFF]), .noAcceptableMethod(offered: [0])))
    }

    @Test(arguments: [
        ([4, 1, 0, 80, 127, 0, 0, 1, 0] as [UInt8], nil as UInt8?, SOCKS5HandshakeFailure.unsupportedVersion(4)),
        ([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80], 0x07, .unsupportedCommand(.bind)),
        ([5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80], 0x08, .unknownAddressType(9)),
        ([5, 1, 0, 5, 1, 0, 3, 0, 0, 80], 0x01, .malformedDomainName),
        ([5, 1, 0, 5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80], 0x01, .malformedDomainName),
        ([5, 1, 0, 5, 1, 7, 1, 127, 0, 0, 1, 0, 80], 0x01, .nonZeroReservedByte(7)),
    ])
    func badRequestsGetTheRightReplyCode(bytes: [UInt8], code: UInt8?, failure: SOCKS5HandshakeFailure) {
        var handshake = SOCKS5ServerHandshake(credentials: nil)
        var input = ByteBuffer(bytes: bytes)
        var action = handshake.process(&input)
        if case .send = action { action = handshake.process(&input) }
        guard case .reject(let reply, let reported) = action else {
            Issue.record("expected a rejection, got \(action)")
            return
        }
        #expect(reported == failure)
        #expect(reply.map { Array($0.readableBytesView)[1] } == code)
    }

    @Test func failureReplyCarriesTheCode() {
        var handshake = SOCKS5ServerHandshake(credentials: nil)
        #expect(Array(handshake.connectFailed(.connectionRefused).readableBytesView) == [5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
    }

    @Test func unknownCodePointsStillHaveNames() {
        #expect(SOCKSReplyCode(rawValue: 0x42).description == "reply-0x42")
        #expect(SOCKSCommand(rawValue: 9).description == "command-0x9")
    }
}
