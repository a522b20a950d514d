import NIOCore
import PathManager
import Testing

@Suite struct PathHealthMonitorTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let wan1 = PathIdentifier("wan1"), wan2 = PathIdentifier("wan2")

    func ms(_ value: Int64) -> NIODeadline { t0 + .milliseconds(value) }

    /// Feeds probe answers every 100 ms from `from` to `to` (answered or not) and fires the
    /// timer between them; returns the actions with their times.
    func run(_ monitor: inout PathHealthMonitor, _ path: PathIdentifier, answered: Bool, from: Int64, to: Int64) -> [(Int64, PathHealthMonitor.Action)] {
        var actions: [(Int64, PathHealthMonitor.Action)] = []
        var time = from
        while time <= to {
            actions += monitor.probed(path, answered: answered, now: ms(time)).map { (time, $0) }
            actions += monitor.timerFired(now: ms(time + 50)).map { (time + 50, $0) }
            time += 100
        }
        return actions
    }

    @Test func aLinkThatGoesDownIsRetiredAtOnceAndRestoredOnceItHolds() {
        var monitor = PathHealthMonitor()
        #expect(monitor.add(wan1, policy: PathPolicy(probed: false), linkUp: true, now: t0) == [.restore(wan1, PathPolicy(probed: false))])
        #expect(monitor.linkChanged(wan1, up: false, now: ms(1_000)) == [.retire(wan1, reason: "link down")])
        #expect(monitor.linkChanged(wan1, up: false, now: ms(1_010)).isEmpty, "retired once")
        #expect(monitor.linkChanged(wan1, up: true, now: ms(2_000)).isEmpty, "not before the hold time")
        #expect(monitor.nextDeadline == ms(2_100))
        #expect(monitor.timerFired(now: ms(2_099)).isEmpty)
        #expect(monitor.timerFired(now: ms(2_100)) == [.restore(wan1, PathPolicy(probed: false))])
        #expect(monitor.pathsInUse == [wan1])
    }

    @Test func unansweredProbesRetireABlackholedPathAndGoodOnesBringItBack() {
        var monitor = PathHealthMonitor()
        _ = monitor.add(wan1, policy: PathPolicy(), linkUp: true, now: t0)
        let lost = run(&monitor, wan1, answered: false, from: 1_000, to: 1_500)
        #expect(lost.count == 1 && lost[0].0 == 1_200, "retired on the third unanswered probe: \(lost)")
        if case .retire(_, let reason) = lost.first?.1 { #expect(reason.contains("3 probes unanswered")) }
        let back = run(&monitor, wan1, answered: true, from: 3_000, to: 3_500)
        // Two good probes (3.0, 3.1 s), then the 100 ms hold: restored at the 3.2 s tick.
        #expect(back.count == 1 && back[0].0 == 3_250 && back[0].1 == .restore(wan1, PathPolicy()), "\(back)")
        #expect(back[0].0 - 3_000 <= 500, "the path returns within 0.5 s of the first good probe")
    }

    @Test func aFlappingPathIsDampedNeverChurned() {
        var monitor = PathHealthMonitor()
        _ = monitor.add(wan1, policy: PathPolicy(probed: false), linkUp: true, now: t0)
        var restores: [Int64] = [], retires = 0
        var time: Int64 = 0
        var up = true
        while time <= 10_000 {   // the link toggles every 200 ms for 10 s; the timer runs every 10 ms
            if time % 200 == 0 {
                up.toggle()
                for action in monitor.linkChanged(wan1, up: up, now: ms(time)) { if case .retire = action { retires += 1 } }
            }
            for action in monitor.timerFired(now: ms(time)) { if case .restore = action { restores.append(time) } }
            time += 10
        }
        let gaps = zip(restores.dropFirst(), restores).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 500 }, "at most one restoration per 500 ms: \(restores)")
        #expect(restores.count <= 4, "the hold grows while it flaps: \(restores)")
        #expect(retires <= restores.count + 1)
        // Once it stops flapping (up from 10.2 s) it is back within the longest hold.
        _ = monitor.linkChanged(wan1, up: true, now: ms(10_200))
        let deadline = monitor.nextDeadline
        #expect(deadline.map { $0 <= ms(10_200) + PathHealthConfiguration().maximumHoldTime } == true)
        #expect(monitor.timerFired(now: ms(15_200)) == [.restore(wan1, PathPolicy(probed: false))])
    }

    @Test func aStuckSubflowRetiresAWorkingLookingPath() {
        var monitor = PathHealthMonitor()
        _ = monitor.add(wan2, policy: PathPolicy(role: .backup), linkUp: true, now: t0)
        #expect(monitor.subflowStuck(wan2, now: ms(500)) == [.retire(wan2, reason: "a subflow is stuck in retransmission back-off")])
        #expect(monitor.subflowStuck(wan2, now: ms(600)).isEmpty)
        // Back with its policy: a backup path returns as a backup.
        let back = run(&monitor, wan2, answered: true, from: 1_000, to: 1_400)
        #expect(back.map(\.1) == [.restore(wan2, PathPolicy(role: .backup))])
    }

    @Test func aPathLostRightAfterItsRestorationWaitsTheMinimumInterval() {
        var monitor = PathHealthMonitor()
        _ = monitor.add(wan1, policy: PathPolicy(probed: false), linkUp: false, now: t0)
        _ = monitor.linkChanged(wan1, up: true, now: ms(0))
        #expect(monitor.timerFired(now: ms(100)) == [.restore(wan1, PathPolicy(probed: false))])
        _ = monitor.linkChanged(wan1, up: false, now: ms(150))
        _ = monitor.linkChanged(wan1, up: true, now: ms(200))
        #expect(monitor.nextDeadline == ms(600), "last restoration at 100 ms + 500 ms")
        #expect(monitor.timerFired(now: ms(599)).isEmpty)
        #expect(monitor.timerFired(now: ms(600)).count == 1)
    }

    @Test func aPathThatFailsAgainWhileReturningIsNotRestored() {
        var monitor = PathHealthMonitor()
        _ = monitor.add(wan1, policy: PathPolicy(probed: false), linkUp: true, now: t0)
        _ = monitor.linkChanged(wan1, up: false, now: ms(1_000))
        _ = monitor.linkChanged(wan1, up: true, now: ms(2_000))
        #expect(monitor.linkChanged(wan1, up: false, now: ms(2_050)).isEmpty, "not in use: nothing to retire")
        #expect(monitor.timerFired(now: ms(3_000)).isEmpty)
        #expect(monitor.pathsInUse.isEmpty)
    }

    @Test func anAddressThatGoesIsRetiredAtOnceAndItsReturnIsHeldLikeALink() {
        var monitor = PathHealthMonitor()
        let policy = PathPolicy(probed: false)
        #expect(monitor.add(wan1, policy: policy, linkUp: true, hasAddress: false, now: t0).isEmpty, "no address yet: not used")
        #expect(monitor.health(of: wan1) == .down(since: t0, reason: "no address"))
        #expect(monitor.addressChanged(wan1, present: true, now: ms(100)).isEmpty && monitor.nextDeadline == ms(200))
        #expect(monitor.timerFired(now: ms(200)) == [.restore(wan1, policy)])
        #expect(monitor.addressChanged(wan1, present: false, now: ms(1_000)) == [.retire(wan1, reason: "address gone")])
        #expect(monitor.addressChanged(wan1, present: false, now: ms(1_001)).isEmpty, "once")
        #expect(monitor.linkChanged(wan1, up: true, now: ms(1_100)).isEmpty && monitor.timerFired(now: ms(2_000)).isEmpty,
                "the link alone does not bring a path without its address back")
        #expect(monitor.addressChanged(wan1, present: true, now: ms(2_000)).isEmpty)
        #expect(monitor.timerFired(now: ms(2_100)) == [.restore(wan1, policy)])
    }
}
