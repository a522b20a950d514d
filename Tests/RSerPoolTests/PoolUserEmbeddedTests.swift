import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import RSerPool
import RSerPoolCore
import RSerPoolWire

/// The pool user's driver on an `EmbeddedEventLoop`: registrar associations are
/// EmbeddedChannels with the real codec; time is virtual.
private final class PoolUserHarness {
    let loop = EmbeddedEventLoop()
    let registrars: EmbeddedRegistrars
    let driver: PoolUserDriver

    init(ports: [Int] = [3863, 3864], refusing: Set<Int> = [], timeout: TimeAmount = .seconds(2)) throws {
        registrars = EmbeddedRegistrars(loop: loop, refusing: refusing)
        driver = PoolUserDriver(loop: loop, registrars: try loopbackRegistrars(ports), cache: HandleResolutionCache(staleTimeout: .seconds(1), seed: 1),
                                requestTimeout: timeout, logger: Logger(label: "test"), connector: registrars.connector)
    }

    var associations: [(SocketAddress, EmbeddedChannel)] { registrars.associations }
    func written(on channel: EmbeddedChannel) throws -> [ASAPMessage] { try registrars.written(on: channel) }

    func answer(on channel: EmbeddedChannel, _ identifiers: [UInt32]) throws {
        let response = ASAPHandleResolutionResponse(poolHandle: "EchoPool", policy: .roundRobin, elements: identifiers.map {
            PoolElementParameter(identifier: PoolElementIdentifier($0), registrationLife: 30_000,
                                 userTransport: .tcp(.ipv4Loopback, port: UInt16(4000 + $0)), policy: .roundRobin)
        })
        try channel.writeInbound(ASAPMessage.handleResolutionResponse(response).encoded())
    }
}

@Suite("Pool user on NIOEmbedded")
struct PoolUserEmbeddedTests {
    @Test func aResolutionIsAnsweredAndCachedOnTheLoopsClock() throws {
        let h = try PoolUserHarness()
        let answer = h.driver.resolve("EchoPool", maximumCount: 2)
        let (address, channel) = try #require(h.associations.first)
        #expect(address.port == 3863)
        #expect(try h.written(on: channel) == [.handleResolution(ASAPHandleResolution(poolHandle: "EchoPool", option: HandleResolutionOption(items: 2)))])
        try h.answer(on: channel, [1, 2])
        #expect(try answer.wait().elements.count == 2)
        // Fresh for a second of the loop's time: no new request.
        h.loop.advanceTime(by: .milliseconds(900))
        let selected = h.driver.select("EchoPool")
        #expect(try selected.wait().identifier.rawValue > 0)
        #expect(try h.written(on: channel).isEmpty)
        // Stale after it: the next selection asks again.
        h.loop.advanceTime(by: .milliseconds(200))
        let again = h.driver.select("EchoPool")
        #expect(try h.written(on: channel).count == 1)
        try h.answer(on: channel, [3])
        #expect(try again.wait().identifier == PoolElementIdentifier(3))
    }

    @Test func aSilentRegistrarTimesOutAndTheNextOneAnswers() throws {
        let h = try PoolUserHarness()
        let answer = h.driver.resolve("EchoPool", maximumCount: nil)
        h.loop.advanceTime(by: .milliseconds(1999))
        #expect(h.associations.count == 1)
        h.loop.advanceTime(by: .milliseconds(1))
        #expect(h.associations.count == 2, "moved to the second registrar after the timeout")
        let (address, channel) = h.associations[1]
        #expect(address.port == 3864)
        #expect(!h.associations[0].1.isActive, "the silent registrar's association is closed")
        #expect(try h.written(on: channel).count == 1)
        try h.answer(on: channel, [7])
        #expect(try answer.wait().elements.map(\.identifier) == [PoolElementIdentifier(7)])
    }

    @Test func everyRegistrarFailingFailsTheRequestWithTheReason() throws {
        let h = try PoolUserHarness(refusing: [3863, 3864])
        let answer = h.driver.resolve("EchoPool", maximumCount: nil)
        #expect(throws: PoolUserError.self) { try answer.wait() }
        do {
            _ = try answer.wait()
        } catch let error as PoolUserError {
            #expect(error.code == .noRegistrarReachable)
            #expect(error.detail.contains("3864"), "\(error)")
        }
    }

    @Test func aClosedAssociationRetriesAndShutdownFailsTheRest() throws {
        let h = try PoolUserHarness()
        let first = h.driver.resolve("EchoPool", maximumCount: nil)
        try h.associations[0].1.close().wait()
        #expect(h.associations.count == 2, "the request went to the second registrar")
        let second = h.driver.resolve("EchoPool", maximumCount: nil)
        h.driver.shutdown()
        #expect(throws: PoolUserError.self) { try first.wait() }
        #expect(throws: PoolUserError.self) { try second.wait() }
        #expect(!h.associations[1].1.isActive)
    }
}
