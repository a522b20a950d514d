import NIOCore
import Testing
@testable import CalcApp
import RSerPoolWire

private let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
private func pe(_ id: UInt32) -> PoolElementParameter {
    PoolElementParameter(identifier: PoolElementIdentifier(id), registrationLife: 1000, userTransport: .tcp(.ipv4Loopback, port: 9000), policy: .roundRobin)
}
private func message(_ type: CalcAppMessageType, _ job: UInt32 = 1, size: UInt64 = 1000) -> SessionMessage {
    .calcApp(CalcAppMessage(type, jobID: job, jobSize: size))
}

@Suite("CalcApp PU")
struct CalcAppClientTests {
    @Test func aJobFromArrivalToCompletion() {
        var pu = CalcAppClient()
        #expect(pu.jobArrived(CalcAppJob(id: 1, size: 1000, arrival: t0), now: t0) == [.select])
        #expect(pu.jobArrived(CalcAppJob(id: 2, size: 2000, arrival: t0 + .milliseconds(1)), now: t0 + .milliseconds(1)).isEmpty, "queued behind job 1")
        #expect(pu.selected(pe(7), now: t0 + .milliseconds(2)) == [.connect(pe(7))])
        #expect(pu.connected(now: t0 + .milliseconds(4)) == [.send(message(.request, 1, size: 1000))])
        #expect(pu.received(message(.accept), now: t0 + .milliseconds(6)).isEmpty)
        let done = pu.received(message(.complete), now: t0 + .seconds(1))
        guard case .completed(let record)? = done.first(where: { if case .completed = $0 { true } else { false } }) else {
            Issue.record("no record"); return
        }
        #expect(record.element == PoolElementIdentifier(7))
        #expect(abs(record.startupTime - 0.006) < 1e-9)  // dequeued at t0, accepted at t0 + 6 ms
        #expect(abs(record.processingTime - 0.994) < 1e-9 && record.queuingTime == 0)
        #expect(done.last == .select, "job 2 starts right away")
        #expect(pu.currentJob?.id == 2)
    }

    @Test func rejectionsBackOffExponentially() {
        var pu = CalcAppClient()
        _ = pu.jobArrived(CalcAppJob(id: 1, size: 1000, arrival: t0), now: t0)
        var now = t0
        var waits: [Int64] = []
        for _ in 0..<6 {
            _ = pu.selected(pe(1), now: now)
            _ = pu.connected(now: now)
            _ = pu.received(message(.reject), now: now)
            guard let deadline = pu.nextDeadline else { Issue.record("no retry"); return }
            waits.append((deadline - now).nanoseconds / 1_000_000)
            now = deadline
            #expect(pu.timerFired(now: now) == [.select])
        }
        #expect(waits == [100, 200, 400, 800, 1600, 1600])
    }

    @Test func failoverResumesWithTheLastCookie() {
        var pu = CalcAppClient()
        _ = pu.jobArrived(CalcAppJob(id: 1, size: 10_000_000, arrival: t0), now: t0)
        _ = pu.selected(pe(1), now: t0)
        _ = pu.connected(now: t0)
        _ = pu.received(message(.accept), now: t0)
        let cookie = ByteBuffer(bytes: [9, 9, 9])
        _ = pu.received(.asap(.cookie(ASAPCookie(cookie))), now: t0 + .seconds(5))
        let failover = pu.sessionClosed(now: t0 + .seconds(6))
        #expect(failover.contains(.reportUnreachable(PoolElementIdentifier(1))))
        #expect(failover.last == .select)
        _ = pu.selected(pe(2), now: t0 + .seconds(6))
        #expect(pu.connected(now: t0 + .seconds(6)) == [.send(.asap(.cookieEcho(ASAPCookieEcho(cookie))))])
        _ = pu.received(message(.accept), now: t0 + .seconds(6))
        guard case .completed(let record)? = pu.received(message(.complete), now: t0 + .seconds(11)).first(where: { if case .completed = $0 { true } else { false } }) else {
            Issue.record("no record"); return
        }
        #expect(record.failovers == 1 && record.element == PoolElementIdentifier(2))
        #expect(record.accepted == t0, "start-up ends at the first acceptance")
    }

    @Test func silentPEIsGivenUpAfterTheKeepAliveTimeout() {
        var pu = CalcAppClient()
        _ = pu.jobArrived(CalcAppJob(id: 1, size: 1000, arrival: t0), now: t0)
        _ = pu.selected(pe(1), now: t0)
        _ = pu.connected(now: t0)
        _ = pu.received(message(.accept), now: t0)
        #expect(pu.timerFired(now: t0 + .seconds(5)) == [.send(message(.keepAlive, 1, size: 0))])
        #expect(pu.timerFired(now: t0 + .seconds(9)).isEmpty)
        let actions = pu.timerFired(now: t0 + .seconds(10))
        #expect(actions.contains(.reportUnreachable(PoolElementIdentifier(1))) && actions.last == .select)
    }

    @Test func refusedCookieStartsAfresh() {
        var pu = CalcAppClient()
        _ = pu.jobArrived(CalcAppJob(id: 1, size: 1000, arrival: t0), now: t0)
        _ = pu.selected(pe(1), now: t0)
        _ = pu.connected(now: t0)
        _ = pu.received(message(.accept), now: t0)
        _ = pu.received(.asap(.cookie(ASAPCookie(ByteBuffer(bytes: [1])))), now: t0)
        _ = pu.sessionClosed(now: t0)
        _ = pu.selected(pe(2), now: t0)
        _ = pu.connected(now: t0)
        _ = pu.received(.asap(.error(ASAPErrorMessage(OperationError(.rejectedDueToSecurity)))), now: t0)
        _ = pu.selected(pe(3), now: t0)
        #expect(pu.connected(now: t0) == [.send(message(.request, 1, size: 1000))], "no cookie any more: a fresh REQUEST")
    }

    @Test func completeForAnUnknownJobIsReportedNotObeyed() {
        var pu = CalcAppClient()
        _ = pu.jobArrived(CalcAppJob(id: 1, size: 1000, arrival: t0), now: t0)
        _ = pu.selected(pe(1), now: t0)
        _ = pu.connected(now: t0)
        _ = pu.received(message(.accept), now: t0)
        #expect(pu.received(message(.complete, 99), now: t0) == [.event(.unknownJob(99, .complete))])
        #expect(pu.currentJob?.id == 1)
    }
}
