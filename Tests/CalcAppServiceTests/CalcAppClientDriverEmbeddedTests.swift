import CalcApp
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import CalcAppService
import RSerPool
import RSerPoolCore
import RSerPoolWire

/// Stands in for `CalcAppPoolUsers`: hands out PEs from a list, opens sessions as
/// EmbeddedChannels on the test's loop, and records what the driver reports.
private final class RecordingOwner: CalcAppClientOwner, @unchecked Sendable {
    let configuration: CalcAppPoolUsers.Configuration
    let loop: EmbeddedEventLoop
    /// The PEs selections return, in turn (nil once used up).
    var elements: [PoolElementParameter]
    var refuseConnections: Set<UInt16> = []
    private(set) var sessions: [(port: Int, channel: EmbeddedChannel)] = []
    private(set) var unreachable: [PoolElementIdentifier] = []
    private(set) var records: [CalcAppJobRecord] = []
    private(set) var failovers: [(job: UInt32, from: PoolElementIdentifier, resumable: Bool)] = []
    private(set) var submissions = 0

    init(loop: EmbeddedEventLoop, elements: [PoolElementParameter], interArrival: Double, requestSize: Double) {
        var configuration = CalcAppPoolUsers.Configuration(
            users: 1, poolHandle: "CalcAppPool", registrars: RegistrarList([]),
            requestSize: Distribution(.constant, mean: requestSize), interArrival: Distribution(.constant, mean: interArrival))
        configuration.client.keepAliveInterval = .seconds(1)
        configuration.client.keepAliveTimeout = .seconds(1)
        self.configuration = configuration
        self.loop = loop
        self.elements = elements
    }

    func select(_ completion: @escaping @Sendable (PoolElementParameter?) -> Void) {
        completion(elements.isEmpty ? nil : elements.removeFirst())
    }

    func reportUnreachable(_ identifier: PoolElementIdentifier) { unreachable.append(identifier) }

    func openSession(to address: SocketAddress, on loop: EventLoop,
                     initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let port = address.port ?? 0
        if refuseConnections.contains(UInt16(port)) {
            return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(3)))
        }
        let channel = EmbeddedChannel(loop: self.loop)
        return initializer(channel).flatMap { channel.connect(to: address) }.map {
            self.sessions.append((port, channel))
            return channel
        }
    }

    func submitted() { submissions += 1 }
    func rejected() {}
    func completed(_ record: CalcAppJobRecord) { records.append(record) }
    func failedOver(user: Int, job: UInt32, from element: PoolElementIdentifier, reason: String, resumable: Bool) {
        failovers.append((job, element, resumable))
    }
}

private struct ClientHarness {
    let loop = EmbeddedEventLoop()
    let owner: RecordingOwner
    let driver: NIOLoopBoundBox<CalcAppClientDriver>

    /// One user whose first job (of `size` calculations) arrives after `interArrival` seconds.
    init(elements: [UInt32], interArrival: Double = 1, size: Double = 1_000) {
        owner = RecordingOwner(loop: loop, elements: elements.map {
            PoolElementParameter(identifier: PoolElementIdentifier($0), registrationLife: 30_000,
                                 userTransport: .tcp(.ipv4Loopback, port: UInt16(7000 + $0)), policy: .roundRobin)
        }, interArrival: interArrival, requestSize: size)
        let loop = self.loop, owner = self.owner
        driver = NIOLoopBoundBox(CalcAppClientDriver(loop: loop, index: 0, owner: owner, end: loop.now + .seconds(1_000),
                                                     generator: SplitMix64(seed: 1)), eventLoop: loop)
        driver.value.start()
    }

    /// The session messages the driver wrote on `channel`.
    func written(on channel: EmbeddedChannel) throws -> [SessionMessage] {
        var messages: [SessionMessage] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while let message = try SessionMessage.decode(from: &buffer) { messages.append(message) }
        }
        return messages
    }

    func answer(_ message: SessionMessage, on channel: EmbeddedChannel) throws {
        var buffer = ByteBuffer()
        message.write(into: &buffer)
        try channel.writeInbound(buffer)
    }
}

@Suite("CalcApp pool user on NIOEmbedded")
struct CalcAppClientDriverEmbeddedTests {
    @Test func aJobArrivesOnTheLoopsClockIsSentToTheSelectedPEAndCompletes() throws {
        let h = ClientHarness(elements: [1], interArrival: 2)
        h.loop.advanceTime(by: .milliseconds(1_999))
        #expect(h.owner.submissions == 0, "the first job arrives after the constant 2 s inter-arrival time")
        h.loop.advanceTime(by: .milliseconds(1))
        let session = try #require(h.owner.sessions.first)
        #expect(session.port == 7001)
        let sent = try h.written(on: session.channel)
        guard case .calcApp(let request) = try #require(sent.first) else { Issue.record("expected a CalcApp request, got \(sent)"); return }
        #expect(request.type == .request)
        #expect(request.jobSize == 1_000)
        try h.answer(.calcApp(CalcAppMessage(.accept, jobID: request.jobID)), on: session.channel)
        h.loop.advanceTime(by: .milliseconds(500))
        try h.answer(.calcApp(CalcAppMessage(.complete, jobID: request.jobID)), on: session.channel)
        let record = try #require(h.owner.records.first)
        #expect(record.element == PoolElementIdentifier(1))
        #expect(record.processingTime == 0.5)
        #expect(record.failovers == 0)
        h.loop.run()
        #expect(!session.channel.isActive, "a completed job ends its session")
    }

    @Test func aBrokenSessionFailsOverAndTheNextPEGetsTheCookie() throws {
        let h = ClientHarness(elements: [1, 2])
        h.loop.advanceTime(by: .seconds(1))
        let first = try #require(h.owner.sessions.first)
        guard case .calcApp(let request) = try #require(try h.written(on: first.channel).first) else { Issue.record("no request"); return }
        try h.answer(.calcApp(CalcAppMessage(.accept, jobID: request.jobID)), on: first.channel)
        let cookie = ByteBuffer(string: "state after 400 calculations")
        try h.answer(.asap(.cookie(ASAPCookie(cookie))), on: first.channel)
        first.channel.pipeline.fireChannelInactive()   // the PE died
        h.loop.run()

        #expect(h.owner.failovers.map(\.job) == [request.jobID])
        #expect(h.owner.failovers.first?.resumable == true)
        #expect(h.owner.unreachable == [PoolElementIdentifier(1)], "the PE that broke the session is reported")
        #expect(h.owner.sessions.count == 2)
        let second = try #require(h.owner.sessions.last)
        #expect(second.port == 7002)
        #expect(try h.written(on: second.channel) == [.asap(.cookieEcho(ASAPCookieEcho(cookie)))],
                "the next PE resumes from the cookie instead of a fresh request")
        try h.answer(.calcApp(CalcAppMessage(.accept, jobID: request.jobID)), on: second.channel)
        try h.answer(.calcApp(CalcAppMessage(.complete, jobID: request.jobID)), on: second.channel)
        #expect(h.owner.records.first?.failovers == 1)
        #expect(h.owner.records.first?.element == PoolElementIdentifier(2))
    }

    @Test func aPEThatStopsAnsweringKeepAlivesIsGivenUp() throws {
        let h = ClientHarness(elements: [1, 2])
        h.loop.advanceTime(by: .seconds(1))
        let first = try #require(h.owner.sessions.first)
        guard case .calcApp(let request) = try #require(try h.written(on: first.channel).first) else { Issue.record("no request"); return }
        try h.answer(.calcApp(CalcAppMessage(.accept, jobID: request.jobID)), on: first.channel)
        h.loop.advanceTime(by: .seconds(1))
        #expect(try h.written(on: first.channel) == [.calcApp(CalcAppMessage(.keepAlive, jobID: request.jobID))])
        h.loop.advanceTime(by: .milliseconds(999))
        #expect(h.owner.failovers.isEmpty)
        h.loop.advanceTime(by: .milliseconds(1))
        #expect(h.owner.failovers.first?.from == PoolElementIdentifier(1))
        #expect(h.owner.failovers.first?.resumable == false, "no cookie was received")
        #expect(h.owner.sessions.last?.port == 7002)
    }

    @Test func aPEThatRefusesTheConnectionIsReportedAndTheNextIsTried() throws {
        let h = ClientHarness(elements: [1, 2])
        h.owner.refuseConnections = [7001]
        h.loop.advanceTime(by: .seconds(1))
        #expect(h.owner.unreachable == [PoolElementIdentifier(1)])
        let session = try #require(h.owner.sessions.first)
        #expect(session.port == 7002)
        guard case .calcApp(let request) = try #require(try h.written(on: session.channel).first) else { Issue.record("no request"); return }
        #expect(request.type == .request)
    }
}
