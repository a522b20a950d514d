import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import RSerPool
import RSerPoolCore
import RSerPoolWire

private let element = PoolElementParameter(identifier: PoolElementIdentifier(42), registrationLife: 60_000,
                                           userTransport: .tcp(.ipv4Loopback, port: 7000), policy: .roundRobin)

/// A registrar core and one association on an `EmbeddedEventLoop`: real pipeline, real
/// codec, virtual time.
private struct Harness {
    let loop = EmbeddedEventLoop()
    let core: RegistrarDriver
    let channel: EmbeddedChannel

    init(keepAliveInterval: TimeAmount = .seconds(5), keepAliveTimeout: TimeAmount = .seconds(5)) throws {
        var configuration = RegistrarConfiguration(identifier: RegistrarIdentifier(0xBEEF))
        configuration.keepAliveInterval = keepAliveInterval
        configuration.keepAliveTimeout = keepAliveTimeout
        core = RegistrarDriver(loop: loop, configuration: configuration, logger: Logger(label: "test"))
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addASAPCodec()
        let id = core.associationOpened(channel)
        try channel.pipeline.syncOperations.addHandler(RegistrarAssociationHandler(core: core, association: id))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5555)).wait()
    }

    func send(_ message: ASAPMessage) throws { try channel.writeInbound(message.encoded()) }
    func sendRaw(_ bytes: [UInt8]) throws { try channel.writeInbound(ByteBuffer(bytes: bytes)) }

    /// Decodes what the registrar wrote.
    func received() throws -> [ASAPMessage] {
        var messages: [ASAPMessage] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            var copy = buffer
            while let decoded = try ASAPMessage.decode(from: &copy) { messages.append(decoded.message) }
        }
        return messages
    }
}

@Suite("Registrar on NIOEmbedded")
struct RegistrarEmbeddedTests {
    @Test func registrationByteByByteThenResolution() throws {
        let h = try Harness()
        for byte in Array(buffer: ASAPMessage.registration(ASAPRegistration(poolHandle: "Pool", poolElement: element)).encoded()) {
            try h.sendRaw([byte])
        }
        guard case .registrationResponse(let response)? = try h.received().first else { Issue.record("no response"); return }
        #expect(!response.rejected && response.identifier == element.identifier)
        try h.send(.handleResolution(ASAPHandleResolution(poolHandle: "Pool")))
        guard case .handleResolutionResponse(let resolution)? = try h.received().first else { Issue.record("no resolution"); return }
        #expect(resolution.elements.map(\.identifier) == [element.identifier])
        #expect(resolution.elements.first?.homeRegistrar == RegistrarIdentifier(0xBEEF))
    }

    @Test func keepAliveTimeoutWithVirtualTime() throws {
        let h = try Harness(keepAliveInterval: .seconds(5), keepAliveTimeout: .seconds(5))
        try h.send(.registration(ASAPRegistration(poolHandle: "Pool", poolElement: element)))
        _ = try h.received()
        h.loop.advanceTime(by: .seconds(4))
        #expect(try h.received().isEmpty)
        h.loop.advanceTime(by: .seconds(1))
        guard case .endpointKeepAlive(let keepAlive)? = try h.received().first else { Issue.record("no keep-alive at 5 s"); return }
        #expect(keepAlive.registrar == RegistrarIdentifier(0xBEEF) && keepAlive.identifier == element.identifier)
        // Answer it: the PE stays through the next round.
        try h.send(.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "Pool", identifier: element.identifier)))
        h.loop.advanceTime(by: .seconds(5))
        #expect(try h.received().count == 1, "the next keep-alive")
        #expect(h.core.machine.handlespace.elementCount == 1)
        // Stay silent: dropped 5 s later.
        h.loop.advanceTime(by: .seconds(5))
        #expect(h.core.machine.handlespace.elementCount == 0)
    }

    @Test func unknownMessageTypeGetsAsapErrorAndTheStreamGoesOn() throws {
        let h = try Harness()
        try h.sendRaw([0x7F, 0x00, 0x00, 0x08, 0xDE, 0xAD, 0xBE, 0xEF])
        guard case .error(let error)? = try h.received().first else { Issue.record("no ASAP Error"); return }
        #expect(error.error.code == .unrecognizedMessage)
        #expect(error.error.causes.first?.information == [0x7F, 0x00, 0x00, 0x08, 0xDE, 0xAD, 0xBE, 0xEF])
        #expect(h.channel.isActive)
        try h.send(.handleResolution(ASAPHandleResolution(poolHandle: "Pool")))
        guard case .handleResolutionResponse(let response)? = try h.received().first else { Issue.record("stream unusable"); return }
        #expect(response.error?.code == .unknownPoolHandle)
    }

    @Test func stopAndReportParameterIsAnswered() throws {
        let h = try Harness()
        // Handle Resolution with an unknown parameter type 0x4077 (action 01: stop and report).
        try h.sendRaw([0x05, 0, 0, 0x14, 0, 0x09, 0, 0x08, 0x50, 0x6F, 0x6F, 0x6C, 0x40, 0x77, 0, 0x08, 1, 2, 3, 4])
        guard case .error(let error)? = try h.received().first else { Issue.record("no ASAP Error"); return }
        #expect(error.error.code == .unrecognizedParameter)
        #expect(error.error.causes.first?.information == [0x40, 0x77, 0, 0x08, 1, 2, 3, 4])
    }

    @Test func impossibleLengthClosesTheAssociation() throws {
        let h = try Harness()
        try? h.sendRaw([0x01, 0x00, 0x00, 0x02])
        guard case .error(let error)? = try h.received().first else { Issue.record("no ASAP Error"); return }
        #expect(error.error.code == .invalidValues)
        #expect(!h.channel.isActive, "a stream with an impossible length cannot be resynchronised")
    }

    @Test func closingTheAssociationRemovesItsPoolElements() throws {
        let h = try Harness()
        try h.send(.registration(ASAPRegistration(poolHandle: "Pool", poolElement: element)))
        #expect(h.core.machine.handlespace.elementCount == 1)
        try h.channel.close().wait()
        #expect(h.core.machine.handlespace.elementCount == 0)
    }
}
