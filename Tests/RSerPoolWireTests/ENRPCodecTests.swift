import NIOCore
import Testing
@testable import RSerPoolWire

private func bytes(_ hex: String) -> [UInt8] {
    let digits = hex.filter { !$0.isWhitespace }
    return stride(from: 0, to: digits.count, by: 2).map {
        let start = digits.index(digits.startIndex, offsetBy: $0)
        return UInt8(digits[start..<digits.index(start, offsetBy: 2)], radix: 16)!
    }
}

private let a = RegistrarIdentifier(0x0000_000A), b = RegistrarIdentifier(0x0000_000B)
private let server = ServerInformation(identifier: a, transport: .tcp(.ipv4Loopback, port: 9901))
private let element = PoolElementParameter(identifier: PoolElementIdentifier(7), homeRegistrar: a, registrationLife: 90_000,
                                           userTransport: .tcp(.ipv4Loopback, port: 7000), policy: .leastUsed(load: 5),
                                           asapTransport: .tcp(.ipv4Loopback, port: 40000))

private func roundTrip(_ message: ENRPMessage) throws -> ENRPMessage {
    var buffer = message.encoded()
    #expect(buffer.readableBytes % 4 == 0)
    let decoded = try #require(try ENRPMessage.decode(from: &buffer))
    #expect(buffer.readableBytes == 0)
    return decoded
}

@Suite("ENRP codec")
struct ENRPCodecTests {
    @Test func presenceVector() throws {
        // RFC 5353 §2.1: sender, receiver, PE Checksum (2 bytes + padding), Server Information.
        let message = ENRPMessage(sender: a, receiver: b, .presence(checksum: 0xBEEF, server: server, replyRequired: true))
        let vector = bytes("""
        01 01 00 2c 00 00 00 0a 00 00 00 0b
        00 0f 00 06 be ef 00 00
        00 0b 00 18 00 00 00 0a 00 05 00 10 26 ad 00 00 00 01 00 08 7f 00 00 01
        """)
        #expect(Array(buffer: message.encoded()) == vector)
        #expect(try ENRPMessage.decode(frame: ByteBuffer(bytes: vector)) == message)
    }

    @Test func takeoverMessagesCarryTheTarget() throws {
        let vector = bytes("07 00 00 10 00 00 00 0a 00 00 00 0b 00 00 00 0c")
        let message = ENRPMessage(sender: a, receiver: b, .initTakeover(target: RegistrarIdentifier(0x0C)))
        #expect(Array(buffer: message.encoded()) == vector)
        #expect(try ENRPMessage.decode(frame: ByteBuffer(bytes: vector)) == message)
    }

    @Test func handleUpdateVector() throws {
        let message = ENRPMessage(sender: a, receiver: b, .handleUpdate(action: .deletePoolElement, poolHandle: "p",
                                                                        element: element, takeoverSuggested: false))
        let encoded = Array(buffer: message.encoded())
        // 16 (header, ids, action, reserved) + 8 (handle "p", padded) + 60 (PE: 16 fixed + TCP 16
        // + LU policy 12 + ASAP transport 16) = 84 = 0x54.
        #expect(Array(encoded.prefix(16)) == bytes("04 00 00 54 00 00 00 0a 00 00 00 0b 00 01 00 00"))
        #expect(encoded.count == 84)
        #expect(try roundTrip(message) == message)
    }

    @Test(arguments: [
        ENRPMessage(sender: a, receiver: b, .handleTableRequest(ownChildrenOnly: true)),
        ENRPMessage(sender: a, receiver: b, .handleTableResponse(entries: [HandleTableEntry(poolHandle: "p", elements: [element, element]),
                                                                          HandleTableEntry(poolHandle: "q", elements: [element])],
                                                                moreToSend: true, rejected: false)),
        ENRPMessage(sender: a, receiver: .unknown, .handleTableResponse(entries: [], moreToSend: false, rejected: true)),
        ENRPMessage(sender: a, receiver: b, .listRequest),
        ENRPMessage(sender: a, receiver: b, .listResponse(servers: [server, ServerInformation(identifier: b, transport: .tcp(.ipv6Loopback, port: 9902))], rejected: false)),
        ENRPMessage(sender: a, receiver: b, .initTakeoverAck(target: RegistrarIdentifier(3))),
        ENRPMessage(sender: a, receiver: b, .takeoverServer(target: RegistrarIdentifier(3))),
        ENRPMessage(sender: a, receiver: b, .error(OperationError(.unrecognizedMessage, information: [1, 2, 3]))),
        ENRPMessage(sender: a, receiver: b, .presence(checksum: 1, server: server, replyRequired: false)),
    ])
    func roundTrips(_ message: ENRPMessage) throws {
        #expect(try roundTrip(message) == message)
    }

    @Test func flagsAreWhereTheRFCPutsThem() {
        let more = ENRPMessage(sender: a, receiver: b, .handleTableResponse(entries: [], moreToSend: true, rejected: true))
        #expect(Array(buffer: more.encoded())[1] == 0x03)
        let own = ENRPMessage(sender: a, receiver: b, .handleTableRequest(ownChildrenOnly: true))
        #expect(Array(buffer: own.encoded())[1] == 0x01)
    }

    @Test func malformed() {
        func fails(_ hex: String) -> RSerPoolWireError? {
            do { _ = try ENRPMessage.decode(frame: ByteBuffer(bytes: bytes(hex))); return nil } catch { return error }
        }
        #expect(fails("7e 00 00 0c 00 00 00 0a 00 00 00 0b")?.code == .unrecognizedMessage)
        #expect(fails("07 00 00 0c 00 00 00 0a 00 00 00 0b")?.code == .truncated, "Init Takeover without its target")
        #expect(fails("07 00 00 14 00 00 00 0a 00 00 00 0b 00 00 00 0c 00 00 00 00")?.code == .trailingBytes)
        #expect(fails("03 00 00 14 00 00 00 0a 00 00 00 0b 00 0e 00 08 00 00 00 01")?.code == .invalidValue, "a PE identifier out of place")
        #expect(fails("04 00 00 10 00 00 00 0a 00 00 00 0b 00 07 00 00")?.code == .invalidValue, "unknown Handle Update action")
        #expect(fails("01 00 00 14 00 00 00 0a 00 00 00 0b 00 0f 00 06 be ef 00 00")?.code == .missingParameter, "Presence without server information")
    }
}

extension ENRPMessage: CustomTestStringConvertible {
    public var testDescription: String { type.description }
}
