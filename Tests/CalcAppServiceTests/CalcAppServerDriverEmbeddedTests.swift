import CalcApp
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import CalcAppService
import RSerPoolWire

/// The CalcApp PE's driver on an `EmbeddedEventLoop`: sessions are EmbeddedChannels set up
/// as the PE's listener sets them up; jobs run on virtual time.
private struct ServerHarness {
    let loop = EmbeddedEventLoop()
    let driver: NIOLoopBoundBox<CalcAppServerDriver>

    init(capacity: Double = 1e6, maxJobs: Int = 1) {
        let configuration = CalcAppServerConfiguration(capacity: capacity, maxJobs: maxJobs, secret: CookieSecret(passphrase: "test"))
        driver = NIOLoopBoundBox(CalcAppServerDriver(loop: loop, server: CalcAppServer(configuration: configuration, now: loop.now),
                                                     logger: Logger(label: "test")), eventLoop: loop)
    }

    func session() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try CalcAppServerDriver.installSession(on: channel, driver: driver)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50_000)).wait()
        return channel
    }

    func send(_ message: CalcAppMessage, on channel: EmbeddedChannel) throws {
        var buffer = ByteBuffer()
        message.write(into: &buffer)
        try channel.writeInbound(buffer)
    }

    /// The CalcApp messages written on `channel` (ASAP session messages — cookies — left out).
    func calcAppMessages(on channel: EmbeddedChannel) throws -> [CalcAppMessage] {
        var messages: [CalcAppMessage] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes >= CalcAppMessage.size, let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
                let length = Int(buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) ?? 0)
                guard length > 0, let frame = buffer.readSlice(length: length) else { break }
                if CalcAppMessageType.range.contains(type) { messages.append(try CalcAppMessage(decoding: frame)) }
            }
        }
        return messages
    }
}

@Suite("CalcApp PE on NIOEmbedded")
struct CalcAppServerDriverEmbeddedTests {
    @Test func aJobIsAcceptedAndCompletesWhenItsCalculationsAreDone() throws {
        let h = ServerHarness(capacity: 1e6)
        let channel = try h.session()
        try h.send(CalcAppMessage(.request, jobID: 7, jobSize: 2_000_000), on: channel)
        #expect(try h.calcAppMessages(on: channel).map(\.type) == [.accept])
        h.loop.advanceTime(by: .milliseconds(1_990))
        #expect(try h.calcAppMessages(on: channel).isEmpty, "2,000,000 calculations at 1,000,000/s take 2 s")
        h.loop.advanceTime(by: .milliseconds(20))
        let done = try h.calcAppMessages(on: channel)
        #expect(done.map(\.type) == [.complete])
        #expect(done.first?.jobID == 7)
    }

    @Test func aFullServerRejectsTheNextJob() throws {
        let h = ServerHarness(maxJobs: 1)
        let first = try h.session(), second = try h.session()
        try h.send(CalcAppMessage(.request, jobID: 1, jobSize: 10_000_000), on: first)
        try h.send(CalcAppMessage(.request, jobID: 2, jobSize: 10_000_000), on: second)
        #expect(try h.calcAppMessages(on: first).map(\.type) == [.accept])
        #expect(try h.calcAppMessages(on: second).map(\.type) == [.reject])
    }

    @Test func aMalformedMessageClosesItsSessionOnly() throws {
        let h = ServerHarness(maxJobs: 2)
        let bad = try h.session(), good = try h.session()
        _ = try? bad.writeInbound(ByteBuffer(bytes: [0x01, 0x00, 0x00, 0x05] + [UInt8](repeating: 0, count: 20)))   // length 5: not a CalcApp message
        h.loop.run()
        #expect(!bad.isActive)
        try h.send(CalcAppMessage(.request, jobID: 3, jobSize: 1_000), on: good)
        #expect(try h.calcAppMessages(on: good).map(\.type) == [.accept])
    }
}
