import NIOCore
import Testing
@testable import RSerPoolWire

private func bytes(_ hex: String) -> [UInt8] {
    let digits = hex.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        out.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return out
}

private func encode(_ message: ASAPMessage) -> [UInt8] { Array(buffer: message.encoded()) }
private func decode(_ data: [UInt8], limits: WireLimits = .default) throws -> DecodedASAPMessage {
    var buffer = ByteBuffer(bytes: data)
    guard let decoded = try ASAPMessage.decode(from: &buffer, limits: limits) else {
        throw RSerPoolWireError(.truncated, "incomplete in test")
    }
    #expect(buffer.readableBytes == 0, "decoder must consume the whole frame")
    return decoded
}

private let loopbackElement = PoolElementParameter(
    identifier: PoolElementIdentifier(0x0102_0304), homeRegistrar: .unknown, registrationLife: 90_000,
    userTransport: .tcp(.ipv4Loopback, port: 7), policy: .roundRobin)

/// RFC 5352 §2.2.1 Registration: Pool Handle + Pool Element, laid out as RFC 5354 defines.
private let registrationVector = bytes("""
01 00 00 34
00 09 00 08 50 6f 6f 6c
00 0a 00 28 01 02 03 04 00 00 00 00 00 01 5f 90
00 05 00 10 00 07 00 00 00 01 00 08 7f 00 00 01
00 08 00 08 00 00 00 01
""")

@Suite("ASAP codec: byte vectors")
struct ASAPByteVectorTests {
    @Test func registrationEncodesExactly() {
        let message = ASAPMessage.registration(ASAPRegistration(poolHandle: "Pool", poolElement: loopbackElement))
        #expect(encode(message) == registrationVector)
    }

    @Test func registrationDecodesExactly() throws {
        let decoded = try decode(registrationVector)
        guard case .registration(let registration) = decoded.message else { Issue.record("wrong type"); return }
        #expect(registration.poolHandle == "Pool")
        #expect(registration.poolElement == loopbackElement)
        #expect(decoded.unrecognizedParameters.isEmpty)
    }

    @Test func oddHandleIsPadded() throws {
        // Handle Resolution for "abc": parameter length 7 (padding excluded), then one zero
        // byte. Like the reference implementation, the message length counts the padding of
        // its last parameter (12); a sender that leaves it out (11) is understood too.
        let vector = bytes("05 00 00 0c 00 09 00 07 61 62 63 00")
        #expect(encode(.handleResolution(ASAPHandleResolution(poolHandle: "abc"))) == vector)
        for length: UInt8 in [0x0B, 0x0C] {
            var variant = vector
            variant[3] = length
            guard case .handleResolution(let resolution) = try decode(variant).message else { Issue.record("wrong type"); return }
            #expect(resolution.poolHandle == "abc" && resolution.option == nil)
        }
    }

    @Test func handleResolutionOptionUsesExtensionType() {
        let message = ASAPMessage.handleResolution(ASAPHandleResolution(poolHandle: "Pool", option: .init(items: 5)))
        #expect(encode(message) == bytes("05 00 00 14 00 09 00 08 50 6f 6f 6c 80 3f 00 08 00 00 00 05"))
    }

    @Test func keepAliveCarriesRawRegistrarIdAndHomeFlag() throws {
        let message = ASAPMessage.endpointKeepAlive(ASAPEndpointKeepAlive(
            registrar: RegistrarIdentifier(0xAABB_CCDD), poolHandle: "Pool", identifier: PoolElementIdentifier(9), isHome: true))
        let vector = bytes("07 01 00 18 aa bb cc dd 00 09 00 08 50 6f 6f 6c 00 0e 00 08 00 00 00 09")
        #expect(encode(message) == vector)
        #expect(try decode(vector).message == message)
    }

    @Test func registrationResponseRejectFlagAndOperationError() throws {
        let message = ASAPMessage.registrationResponse(ASAPRegistrationResponse(
            poolHandle: "Pool", identifier: PoolElementIdentifier(1), rejected: true, error: OperationError(.inconsistentPoolingPolicy)))
        let vector = bytes("03 01 00 1c 00 09 00 08 50 6f 6f 6c 00 0e 00 08 00 00 00 01 00 0c 00 08 00 05 00 04")
        #expect(encode(message) == vector)
        #expect(try decode(vector).message == message)
    }

    @Test func priorityLeastUsedPolicyCarriesLoadAndIncrement() {
        var buffer = ByteBuffer()
        buffer.writePolicyParameter(.priorityLeastUsed(load: 0x8000_0000, increment: 0x1999_999A))
        #expect(Array(buffer: buffer) == bytes("00 08 00 10 40 00 00 03 80 00 00 00 19 99 99 9a"))
    }

    @Test func ipv6TransportAndServerAnnounce() throws {
        let transport = TransportAddress.tcp(.ipv6Loopback, port: 3863, transportUse: .dataPlusControl)
        let message = ASAPMessage.serverAnnounce(ASAPServerAnnounce(registrar: RegistrarIdentifier(0x11), transports: [transport]))
        let vector = bytes("0a 00 00 24 00 00 00 11 00 05 00 1c 0f 17 00 01 00 02 00 14 00000000 00000000 00000000 00000001")
        #expect(encode(message) == vector)
        #expect(try decode(vector).message == message)
    }

    @Test func checksumMatchesHandComputation() {
        // "ab" + PE id 1 → words 0x6162 + 0x0000 + 0x0001 = 0x6163, complement 0x9e9c.
        var checksum = HandlespaceChecksum()
        checksum.add(handle: "ab", identifier: PoolElementIdentifier(1))
        #expect(checksum.value == 0x9E9C)
        checksum.remove(handle: "ab", identifier: PoolElementIdentifier(1))
        #expect(checksum.value == 0xFFFF)
    }
}

@Suite("ASAP codec: round trips")
struct ASAPRoundTripTests {
    static let element6 = PoolElementParameter(
        identifier: PoolElementIdentifier(77), homeRegistrar: RegistrarIdentifier(5), registrationLife: 1234,
        userTransport: .tcp(.ipv6Loopback, port: 4000), policy: .priorityLeastUsed(load: 10, increment: 20),
        asapTransport: .tcp(.ipv4Loopback, port: 3863))

    static let all: [ASAPMessage] = [
        .registration(ASAPRegistration(poolHandle: "CalcAppPool", poolElement: element6)),
        .deregistration(ASAPDeregistration(poolHandle: "x", identifier: PoolElementIdentifier(1))),
        .registrationResponse(ASAPRegistrationResponse(poolHandle: "x", identifier: PoolElementIdentifier(1))),
        .deregistrationResponse(ASAPDeregistrationResponse(poolHandle: "x", identifier: PoolElementIdentifier(2), error: OperationError(.unknownPoolHandle))),
        .handleResolution(ASAPHandleResolution(poolHandle: "EchoPool", option: .all)),
        .handleResolutionResponse(ASAPHandleResolutionResponse(poolHandle: "p", policy: .roundRobin,
                                                               elements: [element6, loopbackElement])),
        .handleResolutionResponse(ASAPHandleResolutionResponse(poolHandle: "p", error: OperationError(.unknownPoolHandle))),
        .endpointKeepAlive(ASAPEndpointKeepAlive(registrar: RegistrarIdentifier(3), poolHandle: "p", identifier: nil)),
        .endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "p", identifier: PoolElementIdentifier(3))),
        .endpointUnreachable(ASAPEndpointUnreachable(poolHandle: "p", identifier: PoolElementIdentifier(4))),
        .serverAnnounce(ASAPServerAnnounce(registrar: RegistrarIdentifier(1), transports: [])),
        .cookie(ASAPCookie(ByteBuffer(bytes: [1, 2, 3]))),
        .cookieEcho(ASAPCookieEcho(ByteBuffer(bytes: [1, 2, 3, 4, 5]))),
        .businessCard(ASAPBusinessCard(poolHandle: "p", policy: .roundRobin, elements: [loopbackElement])),
        .error(ASAPErrorMessage(OperationError(causes: [ErrorCause(.unrecognizedParameter, information: [0xC0, 0x01, 0, 5, 9]),
                                                        ErrorCause(.invalidValues)]))),
    ]

    @Test(arguments: all)
    func roundTrip(_ message: ASAPMessage) throws {
        let encoded = encode(message)
        #expect(encoded.count % 4 == 0, "frames are padded to 4 bytes")
        let decoded = try decode(encoded)
        #expect(decoded.message == message)
        #expect(Array(buffer: decoded.message.encoded()) == encoded)
    }

    @Test func streamOfMessagesDecodesOneByOneAndWaitsForMore() throws {
        var stream = ByteBuffer()
        for message in Self.all { stream.writeASAPMessage(message) }
        let whole = Array(buffer: stream)
        // Feed byte by byte: every message must come out once, never early.
        var buffer = ByteBuffer()
        var decoded: [ASAPMessage] = []
        for byte in whole {
            buffer.writeInteger(byte)
            while let message = try ASAPMessage.decode(from: &buffer) { decoded.append(message.message) }
        }
        #expect(decoded == Self.all)
        #expect(buffer.readableBytes == 0)
    }
}

extension ASAPMessage: CustomTestStringConvertible {
    public var testDescription: String { type.description }
}

@Suite("ASAP codec: malformed input")
struct ASAPMalformedTests {
    private func failure(_ data: [UInt8], limits: WireLimits = .default) -> RSerPoolWireError? {
        do {
            _ = try decode(data, limits: limits)
            return nil
        } catch let error as RSerPoolWireError {
            return error
        } catch {
            return nil
        }
    }

    @Test func lengthBelowHeaderIsAFramingError() {
        var buffer = ByteBuffer(bytes: [0x05, 0, 0, 3, 0, 0, 0, 0])
        #expect(throws: RSerPoolWireError.self) { try RSerPoolFraming.nextFrame(from: &buffer) }
        #expect(buffer.readableBytes == 8, "a failed frame leaves the buffer untouched")
    }

    @Test func oversizeMessageIsRefusedBeforeBuffering() {
        var buffer = ByteBuffer(bytes: [0x01, 0, 0x10, 0x00])
        #expect(throws: RSerPoolWireError.self) {
            try RSerPoolFraming.nextFrame(from: &buffer, limits: WireLimits(maximumMessageSize: 1024))
        }
    }

    @Test func incompleteFrameNeedsMoreBytes() throws {
        for cut in 0..<registrationVector.count {
            var buffer = ByteBuffer(bytes: registrationVector.prefix(cut))
            #expect(try ASAPMessage.decode(from: &buffer) == nil)
            #expect(buffer.readableBytes == cut, "rewound after needing more bytes")
        }
    }

    @Test func unknownMessageTypeIsReportedWithTheMessage() {
        let error = failure(bytes("7f 00 00 08 00 00 00 00"))
        #expect(error?.code == .unrecognizedMessage)
        #expect(error?.cause == .unrecognizedMessage)
        #expect(error?.shouldReport == true)
        #expect(error?.causeInformation == bytes("7f 00 00 08 00 00 00 00"))
    }

    @Test func unknownParameterActionBits() throws {
        let handle = "00 09 00 08 50 6f 6f 6c"
        // 10: skip silently.
        let skip = try decode(bytes("05 00 00 14 \(handle) 80 77 00 08 00 00 00 00"))
        #expect(skip.unrecognizedParameters.isEmpty)
        // 11: skip, but report.
        let report = try decode(bytes("05 00 00 14 \(handle) c0 77 00 08 00 00 00 00"))
        #expect(report.unrecognizedParameters.map(\.type.rawValue) == [0xC077])
        #expect(report.unrecognizedParameterReport?.error.code == .unrecognizedParameter)
        // 00: stop, report nothing.
        let stop = failure(bytes("05 00 00 14 \(handle) 00 77 00 08 00 00 00 00"))
        #expect(stop?.code == .unrecognizedParameter && stop?.shouldReport == false)
        // 01: stop and report, with the parameter as cause information.
        let stopReport = failure(bytes("05 00 00 14 \(handle) 40 77 00 08 00 00 00 00"))
        #expect(stopReport?.code == .unrecognizedParameter && stopReport?.shouldReport == true)
        #expect(stopReport?.causeInformation == bytes("40 77 00 08 00 00 00 00"))
        #expect(stopReport?.messageType == 0x05)
    }

    @Test func parameterLongerThanMessage() {
        #expect(failure(bytes("05 00 00 0c 00 09 00 40 50 6f 6f 6c"))?.code == .truncated)
    }

    @Test func parameterLengthBelowHeader() {
        #expect(failure(bytes("05 00 00 0c 00 09 00 02 50 6f 6f 6c"))?.code == .invalidLength)
    }

    @Test func missingRequiredParameter() {
        #expect(failure(bytes("02 00 00 0c 00 09 00 08 50 6f 6f 6c"))?.code == .missingParameter)
    }

    @Test func wrongParameterInPlace() {
        #expect(failure(bytes("02 00 00 0c 00 0e 00 08 00 00 00 01"))?.code == .invalidValue)
    }

    @Test func poolHandleTooLong() {
        let handle = [UInt8](repeating: 0x41, count: 33)
        var buffer = ByteBuffer()
        buffer.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: PoolHandle(handle))))
        #expect(failure(Array(buffer: buffer))?.code == .poolHandleTooLong)
        #expect(failure(Array(buffer: buffer), limits: WireLimits(maximumPoolHandleLength: 64)) == nil)
    }

    @Test func emptyPoolHandle() {
        #expect(failure(bytes("05 00 00 08 00 09 00 04"))?.code == .invalidValue)
    }

    @Test func badAddressSize() {
        var vector = registrationVector
        vector[38...39] = [0x00, 0x0C]  // IPv4 parameter claims 8 value bytes
        #expect(failure(vector) != nil)
    }

    @Test func tcpTransportWithTwoAddresses() {
        let element = bytes("""
        00 0a 00 30 00 00 00 01 00 00 00 00 00 00 03 e8
        00 05 00 18 00 07 00 00 00 01 00 08 7f 00 00 01 00 01 00 08 7f 00 00 02
        00 08 00 08 00 00 00 01
        """)
        let vector = bytes("01 00 00 3c 00 09 00 08 50 6f 6f 6c") + element
        #expect(failure(vector)?.code == .invalidValue)
    }

    @Test func policyWithTooFewValues() {
        var vector = registrationVector
        vector[46...47] = [0x00, 0x08]
        vector[48...51] = [0x40, 0x00, 0x00, 0x03]  // PLU without its two values
        #expect(failure(vector)?.code == .invalidValue)
    }

    @Test func unexpectedExtraParameter() {
        #expect(failure(bytes("02 00 00 1c 00 09 00 08 50 6f 6f 6c 00 0e 00 08 00 00 00 01 00 0e 00 08 00 00 00 02"))?.code == .invalidValue)
    }

    @Test func operationErrorCauseLengthBeyondParameter() {
        #expect(failure(bytes("0e 00 00 0c 00 0c 00 08 00 01 00 20"))?.code == .invalidLength)
    }

    @Test func garbageAfterFrameBelongsToNextFrame() throws {
        var buffer = ByteBuffer(bytes: bytes("05 00 00 0c 00 09 00 07 61 62 63 00 ff"))
        #expect(try ASAPMessage.decode(from: &buffer) != nil)
        #expect(buffer.readableBytes == 1)
    }

    @Test func wireErrorBecomesAsapErrorReply() throws {
        let error = try #require(failure(bytes("7f 00 00 04")))
        let reply = try #require(ASAPErrorMessage(reporting: error))
        #expect(reply.error.code == .unrecognizedMessage)
    }
}
