import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import RSerPool
import RSerPoolCore
import RSerPoolWire

/// The pool element's driver on an `EmbeddedEventLoop`, its registrar associations
/// EmbeddedChannels with the real codec, time virtual.
private final class PoolElementHarness {
    let loop = EmbeddedEventLoop()
    let registrars: EmbeddedRegistrars
    let registration: PoolElementRegistration
    let driver: PoolElementDriver
    let registered: EventLoopPromise<Void>
    let stopped: EventLoopPromise<Void>

    init() throws {
        var registration = PoolElementRegistration(poolHandle: "EchoPool", identifier: PoolElementIdentifier(0x42),
                                                   userTransport: .tcp(.ipv4Loopback, port: 7000), policy: .roundRobin)
        registration.reregistrationInterval = .seconds(10)
        self.registration = registration
        registrars = EmbeddedRegistrars(loop: loop)
        registered = loop.makePromise()
        stopped = loop.makePromise()
        driver = PoolElementDriver(loop: loop, registration: registration, registrars: try loopbackRegistrars([3863, 3864]),
                                   logger: Logger(label: "test"), stopped: stopped, registered: registered, connector: registrars.connector)
    }

    var associations: [(SocketAddress, EmbeddedChannel)] { registrars.associations }
    func written(on channel: EmbeddedChannel) throws -> [ASAPMessage] { try registrars.written(on: channel) }

    func acceptRegistration(on channel: EmbeddedChannel) throws {
        try channel.writeInbound(ASAPMessage.registrationResponse(ASAPRegistrationResponse(poolHandle: "EchoPool", identifier: registration.identifier)).encoded())
    }
}

@Suite("Pool element on NIOEmbedded")
struct PoolElementEmbeddedTests {
    @Test func registersAnswersKeepAlivesAndReRegistersOnTheLoopsClock() throws {
        let h = try PoolElementHarness()
        h.driver.start()
        let (_, channel) = try #require(h.associations.first)
        guard case .registration(let registration)? = try h.written(on: channel).first else { Issue.record("no registration"); return }
        #expect(registration.poolElement.identifier == PoolElementIdentifier(0x42))
        try h.acceptRegistration(on: channel)
        try h.registered.futureResult.wait()
        #expect(h.driver.isRegistered)

        try channel.writeInbound(ASAPMessage.endpointKeepAlive(ASAPEndpointKeepAlive(registrar: RegistrarIdentifier(7), poolHandle: "EchoPool",
                                                                                      identifier: PoolElementIdentifier(0x42))).encoded())
        #expect(try h.written(on: channel) == [.endpointKeepAliveAck(ASAPEndpointKeepAliveAck(poolHandle: "EchoPool", identifier: PoolElementIdentifier(0x42)))])

        h.loop.advanceTime(by: .milliseconds(9_999))
        #expect(try h.written(on: channel).isEmpty)
        h.loop.advanceTime(by: .milliseconds(1))
        guard case .registration? = try h.written(on: channel).first else { Issue.record("no re-registration after 10 s"); return }
    }

    @Test func aLostRegistrarIsReplacedByTheNextAfterTheReconnectDelay() throws {
        let h = try PoolElementHarness()
        h.driver.start()
        try h.acceptRegistration(on: h.associations[0].1)
        _ = try h.written(on: h.associations[0].1)
        try h.associations[0].1.close().wait()
        #expect(h.associations.count == 1, "waits before reconnecting")
        h.loop.advanceTime(by: .milliseconds(500))
        #expect(h.associations.count == 2)
        let (address, channel) = h.associations[1]
        #expect(address.port == 3864)
        guard case .registration? = try h.written(on: channel).first else { Issue.record("did not register at the next registrar"); return }
    }

    @Test func gracefulStopDeregistersAndFinishes() throws {
        let h = try PoolElementHarness()
        h.driver.start()
        let channel = h.associations[0].1
        try h.acceptRegistration(on: channel)
        _ = try h.written(on: channel)
        h.driver.stop()
        #expect(try h.written(on: channel) == [.deregistration(ASAPDeregistration(poolHandle: "EchoPool", identifier: PoolElementIdentifier(0x42)))])
        try channel.writeInbound(ASAPMessage.deregistrationResponse(ASAPDeregistrationResponse(poolHandle: "EchoPool", identifier: PoolElementIdentifier(0x42))).encoded())
        try h.stopped.futureResult.wait()
        #expect(!channel.isActive)
    }
}
