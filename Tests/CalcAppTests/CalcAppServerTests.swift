import NIOCore
import Testing
@testable import CalcApp
import RSerPoolWire

private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
private let secret = CookieSecret(passphrase: "pool secret")

private func server(capacity: Double = 1e6, maxJobs: Int = 4) -> CalcAppServer {
    CalcAppServer(configuration: CalcAppServerConfiguration(capacity: capacity, maxJobs: maxJobs, secret: secret), now: t0)
}

private func request(_ id: UInt32, _ size: UInt64) -> SessionMessage { .calcApp(CalcAppMessage(.request, jobID: id, jobSize: size)) }

private func sent(_ actions: [CalcAppServer.Action]) -> [(SessionMessage, SessionID)] {
    actions.compactMap { if case .send(let m, let s) = $0 { (m, s) } else { nil } }
}

/// Runs the server's timers until `end`, collecting what it sends.
private func run(_ server: inout CalcAppServer, until end: NIODeadline) -> [(NIODeadline, SessionMessage, SessionID)] {
    var log: [(NIODeadline, SessionMessage, SessionID)] = []
    while let deadline = server.nextDeadline, deadline <= end {
        for (message, session) in sent(server.timerFired(now: deadline)) { log.append((deadline, message, session)) }
    }
    return log
}

@Suite("CalcApp wire")
struct CalcAppWireTests {
    @Test func messageIs24BytesBigEndian() throws {
        var buffer = ByteBuffer()
        CalcAppMessage(.complete, jobID: 0x0102_0304, jobSize: 1_000_000, completed: 1_000_000).write(into: &buffer)
        #expect(Array(buffer: buffer) == [0x05, 0x00, 0x00, 0x18, 0x01, 0x02, 0x03, 0x04,
                                          0, 0, 0, 0, 0, 0x0F, 0x42, 0x40, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x40])
        #expect(try CalcAppMessage(decoding: buffer) == CalcAppMessage(.complete, jobID: 0x0102_0304, jobSize: 1_000_000, completed: 1_000_000))
    }

    @Test func sessionStreamSeparatesCalcAppFromASAP() throws {
        var stream = ByteBuffer()
        SessionMessage.calcApp(CalcAppMessage(.request, jobID: 1, jobSize: 5)).write(into: &stream)
        SessionMessage.asap(.cookieEcho(ASAPCookieEcho(ByteBuffer(bytes: [1, 2, 3])))).write(into: &stream)
        SessionMessage.calcApp(CalcAppMessage(.keepAlive, jobID: 1)).write(into: &stream)
        var decoded: [SessionMessage] = []
        while let message = try SessionMessage.decode(from: &stream) { decoded.append(message) }
        #expect(decoded.count == 3)
        guard case .asap(.cookieEcho) = decoded[1] else { Issue.record("not a cookie echo"); return }
    }

    @Test func malformedSessionBytes() throws {
        var wrongLength = ByteBuffer(bytes: [0x01, 0, 0, 0x10] + [UInt8](repeating: 0, count: 20))
        #expect(throws: CalcAppError.self) { try SessionMessage.decode(from: &wrongLength) }
        var foreign = ByteBuffer(bytes: [0x09, 0, 0, 0x08, 0, 0, 0, 0])  // ASAP Endpoint Unreachable has no place here
        #expect(throws: CalcAppError.self) { try SessionMessage.decode(from: &foreign) }
        var partial = ByteBuffer(bytes: [0x01, 0, 0, 0x18, 1, 2])
        #expect(try SessionMessage.decode(from: &partial) == nil)
    }

    @Test func sipHashReferenceVector() {
        // SipHash-2-4 paper, appendix A: key 00…0f, message 00…0e → a129ca6149be45e5.
        let mac = SipHash24(key: Array(0...15))
        #expect(mac.hash(Array(0...14)) == 0xA129_CA61_49BE_45E5)
    }

    @Test func cookieSealsAndRefusesForgery() throws {
        let cookie = CalcAppCookie(jobID: 7, jobSize: 1_000_000, completed: 400_000)
        let sealed = cookie.sealed(with: secret)
        #expect(sealed.readableBytes == CalcAppCookie.size)
        #expect(try CalcAppCookie(opening: sealed, with: secret) == cookie)
        // A PU that raises "completed" breaks the tag.
        var forged = sealed
        forged.setInteger(UInt64(999_999), at: 12)
        #expect(throws: CalcAppError.self) { try CalcAppCookie(opening: forged, with: secret) }
        #expect(throws: CalcAppError.self) { try CalcAppCookie(opening: sealed, with: CookieSecret(passphrase: "other pool")) }
        #expect(throws: CalcAppError.self) { try CalcAppCookie(opening: sealed.getSlice(at: 0, length: 20)!, with: secret) }
    }
}

@Suite("CalcApp PE: processor sharing")
struct CalcAppServerTests {
    @Test func twoJobsShareTheCapacityAndFinishTogetherAtTwoSeconds() {
        var pe = server()
        _ = pe.received(request(1, 1_000_000), on: SessionID(1), now: t0)
        _ = pe.received(request(2, 1_000_000), on: SessionID(2), now: t0)
        let log = run(&pe, until: t0 + .seconds(3)).filter { if case .calcApp(let m) = $0.1 { m.type == .complete } else { false } }
        #expect(log.count == 2)
        #expect(log.allSatisfy { abs(Double(($0.0 - t0).nanoseconds) / 1e9 - 2.0) < 1e-6 })
    }

    @Test func sharesAreReplannedWhenAJobArrives() {
        // Job 1 alone for 0.5 s (500k done), then shares with job 2: 500k left at 500k/s → ends at 1.5 s.
        var pe = server()
        _ = pe.received(request(1, 1_000_000), on: SessionID(1), now: t0)
        _ = pe.received(request(2, 2_000_000), on: SessionID(2), now: t0 + .milliseconds(500))
        let completions = run(&pe, until: t0 + .seconds(10)).compactMap { entry -> (Double, UInt32)? in
            if case .calcApp(let m) = entry.1, m.type == .complete { (Double((entry.0 - t0).nanoseconds) / 1e9, m.jobID) } else { nil }
        }
        // Job 2: 500k done by 1.5 s, 1.5M left alone at 1M/s → 3.0 s.
        #expect(completions.count == 2)
        #expect(abs(completions[0].0 - 1.5) < 1e-6 && completions[0].1 == 1)
        #expect(abs(completions[1].0 - 3.0) < 1e-6 && completions[1].1 == 2)
    }

    @Test func fifthJobIsRejected() {
        var pe = server(maxJobs: 4)
        for id in UInt32(1)...4 { _ = pe.received(request(id, 1_000), on: SessionID(UInt64(id)), now: t0) }
        let actions = pe.received(request(5, 1_000), on: SessionID(5), now: t0)
        guard case .calcApp(let reply)? = sent(actions).first?.0 else { Issue.record("no reply"); return }
        #expect(reply.type == .reject && reply.jobID == 5)
        #expect(pe.load == 1.0 && pe.jobsRejected == 1)
    }

    @Test func loadIsReportedOnEveryChange() {
        var pe = server(maxJobs: 4)
        #expect(pe.received(request(1, 1_000), on: SessionID(1), now: t0).contains(.loadChanged(0.25)))
        #expect(pe.sessionClosed(SessionID(1), now: t0 + .milliseconds(1)).contains(.loadChanged(0)))
    }

    @Test func cookiesEveryFiveSecondsOrFiveMillionCalculations() {
        // 1M/s alone: 5e6 calculations and 5 s coincide; at 2M/s the calculation limit comes first (2.5 s).
        var slow = server(capacity: 1e6)
        _ = slow.received(request(1, 20_000_000), on: SessionID(1), now: t0)
        let slowCookies = run(&slow, until: t0 + .seconds(11)).filter { if case .asap(.cookie) = $0.1 { true } else { false } }.map { $0.0 }
        #expect(slowCookies.map { Double(($0 - t0).nanoseconds) / 1e9 }.map { $0.rounded() } == [5, 10])
        var fast = server(capacity: 2e6)
        _ = fast.received(request(1, 20_000_000), on: SessionID(1), now: t0)
        let fastCookies = run(&fast, until: t0 + .seconds(6)).filter { if case .asap(.cookie) = $0.1 { true } else { false } }.map { $0.0 }
        #expect(fastCookies.map { (Double(($0 - t0).nanoseconds) / 1e9 * 10).rounded() / 10 } == [2.5, 5.0])
    }

    @Test func cookieEchoResumesWhereTheCookieSays() throws {
        var first = server()
        _ = first.received(request(9, 10_000_000), on: SessionID(1), now: t0)
        let cookieMessage = run(&first, until: t0 + .seconds(5)).first { if case .asap(.cookie) = $0.1 { true } else { false } }
        guard case .asap(.cookie(let cookie))? = cookieMessage?.1 else { Issue.record("no cookie"); return }
        // The PE dies; another PE of the pool resumes from the cookie: 5M left at 1M/s.
        var second = server()
        let resumeAt = t0 + .seconds(7)
        let actions = second.received(.asap(.cookieEcho(ASAPCookieEcho(cookie.cookie))), on: SessionID(4), now: resumeAt)
        #expect(actions.contains(.event(.resumed(SessionID(4), jobID: 9, completed: 5_000_000))))
        let done = run(&second, until: resumeAt + .seconds(10)).first { if case .calcApp(let m) = $0.1 { m.type == .complete } else { false } }
        #expect(done.map { abs(Double(($0.0 - resumeAt).nanoseconds) / 1e9 - 5.0) < 1e-6 } == true)
    }

    @Test func forgedCookieEchoIsRefused() {
        var pe = server()
        var forged = CalcAppCookie(jobID: 1, jobSize: 100, completed: 99).sealed(with: CookieSecret(passphrase: "guess"))
        forged.moveWriterIndex(to: forged.writerIndex)
        let actions = pe.received(.asap(.cookieEcho(ASAPCookieEcho(forged))), on: SessionID(1), now: t0)
        #expect(actions.contains(.close(SessionID(1))))
        #expect(pe.activeJobs == 0)
    }

    @Test(arguments: [UInt64(0), UInt64.max])
    func absurdJobSizesAreRefused(_ size: UInt64) {
        var pe = server()
        let actions = pe.received(request(1, size), on: SessionID(1), now: t0)
        guard case .calcApp(let reply)? = sent(actions).first?.0 else { Issue.record("no reply"); return }
        #expect(reply.type == .reject && pe.activeJobs == 0)
    }

    @Test func keepAliveIsAnswered() {
        var pe = server()
        _ = pe.received(request(3, 1_000_000), on: SessionID(1), now: t0)
        #expect(sent(pe.received(.calcApp(CalcAppMessage(.keepAlive, jobID: 3)), on: SessionID(1), now: t0)).first?.0
                == .calcApp(CalcAppMessage(.keepAliveAck, jobID: 3)))
    }

    @Test func usedCapacityAccounting() {
        var pe = server(capacity: 1e6)
        _ = pe.received(request(1, 1_000_000), on: SessionID(1), now: t0)
        _ = run(&pe, until: t0 + .seconds(4))
        _ = pe.timerFired(now: t0 + .seconds(4))
        #expect(pe.busyTime == .seconds(1))
        #expect(abs(pe.calculationsDone - 1_000_000) < 1)
    }

    @Test func shutdownHandsOutLastCookies() {
        var pe = server()
        _ = pe.received(request(1, 1_000_000), on: SessionID(1), now: t0)
        let actions = pe.shutdown(now: t0 + .milliseconds(300))
        #expect(actions.contains { if case .send(.asap(.cookie), SessionID(1)) = $0 { true } else { false } })
        #expect(actions.contains(.close(SessionID(1))))
    }

}

@Suite("CalcApp PE: drain")
struct CalcAppDrainTests {
    /// Every action of a run of the timers until `end`, with the time it came.
    private func actions(_ server: inout CalcAppServer, until end: NIODeadline) -> [(NIODeadline, CalcAppServer.Action)] {
        var log: [(NIODeadline, CalcAppServer.Action)] = []
        while let deadline = server.nextDeadline, deadline <= end {
            log += server.timerFired(now: deadline).map { (deadline, $0) }
        }
        return log
    }

    @Test func sessionsLeaveOnePerIntervalMostWorkLeftFirstEachWithItsCookie() throws {
        var pe = server(capacity: 1e6, maxJobs: 4)
        let sizes: [UInt64] = [30_000_000, 90_000_000, 60_000_000, 120_000_000]
        for (index, size) in sizes.enumerated() { _ = pe.received(request(UInt32(index + 1), size), on: SessionID(UInt64(index + 1)), now: t0) }
        let start = t0 + .seconds(1)
        let first = pe.startDrain(sessionsPerSecond: 2, now: start)
        #expect(first.contains(.event(.drainStarted(activeJobs: 4))))
        var log = first.map { (start, $0) }
        log += actions(&pe, until: start + .seconds(10))
        let moves = log.compactMap { time, action -> (Double, SessionID, UInt64)? in
            if case .event(.moved(let session, _, let completed)) = action { (Double((time - start).nanoseconds) / 1e9, session, completed) } else { nil }
        }
        // 2 per second: at 0, 0.5, 1.0, 1.5 s; the job with the most work left first.
        #expect(moves.map(\.1) == [SessionID(4), SessionID(2), SessionID(3), SessionID(1)])
        #expect(moves.map { ($0.0 * 1000).rounded() / 1000 } == [0, 0.5, 1.0, 1.5])
        // Each leaves with a cookie saying how far it got, then its session closes.
        for (_, session, completed) in moves {
            let cookie = log.compactMap { _, action -> ByteBuffer? in
                if case .send(.asap(.cookie(let cookie)), session) = action { cookie.cookie } else { nil }
            }.last
            let opened = try CalcAppCookie(opening: try #require(cookie), with: secret)
            #expect(opened.completed == completed && completed > 0)
            #expect(log.contains { $0.1 == .close(session) })
        }
        #expect(log.last?.1 == .event(.drained(moved: 4)))
        #expect(pe.activeJobs == 0 && pe.jobsMoved == 4 && pe.jobsCompleted == 0 && pe.nextDeadline == nil)
    }

    @Test func aDrainingPERejectsNewJobsAndCookieEchoes() throws {
        var pe = server()
        _ = pe.received(request(1, 50_000_000), on: SessionID(1), now: t0)
        _ = pe.received(request(2, 50_000_000), on: SessionID(2), now: t0)
        _ = pe.startDrain(sessionsPerSecond: 0.5, now: t0 + .seconds(1))
        let fresh = pe.received(request(3, 1_000), on: SessionID(3), now: t0 + .seconds(1))
        #expect(sent(fresh).first?.0 == .calcApp(CalcAppMessage(.reject, jobID: 3, jobSize: 1_000)))
        let cookie = CalcAppCookie(jobID: 7, jobSize: 1_000_000, completed: 10).sealed(with: secret)
        let echo = pe.received(.asap(.cookieEcho(ASAPCookieEcho(cookie))), on: SessionID(4), now: t0 + .seconds(1))
        #expect(sent(echo).first?.0 == .calcApp(CalcAppMessage(.reject, jobID: 7, jobSize: 1_000_000)))
        #expect(pe.activeJobs == 1, "one of the two left at once, none came in")
    }

    @Test func theDrainEndsWhenJobsFinishOrLeaveBeforeTheirTurn() {
        // A slow drain: the short job completes here before its turn; the PU of the other
        // closes its session. Then the drain is over without moving them.
        var pe = server(capacity: 1e6)
        _ = pe.received(request(1, 90_000_000), on: SessionID(1), now: t0)
        _ = pe.received(request(2, 1_000_000), on: SessionID(2), now: t0)
        _ = pe.received(request(3, 80_000_000), on: SessionID(3), now: t0)
        let started = pe.startDrain(sessionsPerSecond: 0.1, now: t0)
        #expect(started.contains { if case .event(.moved(SessionID(1), _, _)) = $0 { true } else { false } })
        let log = actions(&pe, until: t0 + .seconds(3)).map(\.1)
        #expect(log.contains(.event(.completed(SessionID(2), jobID: 2))))
        let closed = pe.sessionClosed(SessionID(3), now: t0 + .seconds(4))
        #expect(closed.contains(.event(.drained(moved: 1))))
        #expect(pe.jobsMoved == 1 && pe.jobsCompleted == 1)
        // An idle PE's drain is over at once.
        var idle = server()
        #expect(idle.startDrain(sessionsPerSecond: 1, now: t0).contains(.event(.drained(moved: 0))))
    }
}

