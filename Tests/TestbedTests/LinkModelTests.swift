import Testbed
import Testing

@Suite struct LinkModelTests {
    @Test func delayIsAddedAndOrderKept() {
        var model = LinkModel(delayNanoseconds: 20_000_000, jitterNanoseconds: 5_000_000, seed: 1)
        var last: UInt64 = 0
        for index in 0..<10_000 {
            let now = UInt64(index) * 100_000
            let departure = model.admit(at: now)!
            #expect(departure >= last, "no reordering")
            #expect(departure >= now + 15_000_000 || departure == last)
            #expect(departure <= max(now + 25_000_000, last))
            last = departure
        }
    }

    @Test func lossRateMatchesTheConfiguration() {
        var model = LinkModel(delayNanoseconds: 0, loss: 0.1, seed: 7)
        let lost = (0..<100_000).filter { model.admit(at: UInt64($0)) == nil }.count
        #expect(abs(Double(lost) / 100_000 - 0.1) < 0.005, "\(lost) of 100000 lost")
    }

    @Test func sameSeedSameDecisions() {
        var a = LinkModel(delayNanoseconds: 1, jitterNanoseconds: 1000, loss: 0.3, seed: 42)
        var b = LinkModel(delayNanoseconds: 1, jitterNanoseconds: 1000, loss: 0.3, seed: 42)
        #expect((0..<1000).map { a.admit(at: UInt64($0)) } == (0..<1000).map { b.admit(at: UInt64($0)) })
    }
}

@Suite struct RecoveryDetectorTests {
    /// 10 MB/s until 5 s, a trickle (100 kB/s) for 2 s, then 6 MB/s.
    static let progress: [(seconds: Double, bytes: UInt64)] = stride(from: 0.0, through: 15.0, by: 0.05).map { t in
        let bytes = t <= 5 ? t * 10e6 : t <= 7 ? 50e6 + (t - 5) * 1e5 : 50e6 + 2e5 + (t - 7) * 6e6
        return (t, UInt64(bytes))
    }

    @Test func aTrickleIsNotRecovery() throws {
        let recovery = try #require(RecoveryDetector.recoveryTime(Self.progress, event: 5, phaseEnd: 15))
        #expect(abs(recovery - 2) < 0.2, "recovered after \(recovery) s")
        // The zero-byte stall detector sees nothing here.
        #expect(StallDetector.stalls(Self.progress).isEmpty)
    }

    @Test func aBurstOfReorderedDataFollowedByAStallIsNotRecovery() throws {
        // 1 MB/s; at 10 s a 2 MB burst arrives at once, then nothing for 1.5 s, then 3 MB/s.
        let progress: [(seconds: Double, bytes: UInt64)] = stride(from: 0.0, through: 20.0, by: 0.05).map { t in
            let bytes = t < 10 ? t * 1e6 : t < 11.5 ? 12e6 : 12e6 + (t - 11.5) * 3e6
            return (t, UInt64(bytes))
        }
        let recovery = try #require(RecoveryDetector.recoveryTime(progress, event: 10, phaseEnd: 20))
        #expect(abs(recovery - 1.5) < 0.2, "recovered after \(recovery) s")
        #expect(StallDetector.stalls(progress).first.map { abs($0.seconds - 1.5) < 0.1 } == true)
    }

    @Test func aDeadPhaseHasNoRecovery() {
        let flat: [(seconds: Double, bytes: UInt64)] = stride(from: 0.0, through: 10.0, by: 0.1).map { ($0, 42) }
        #expect(RecoveryDetector.recoveryTime(flat, event: 2, phaseEnd: 10) == nil)
    }
}
