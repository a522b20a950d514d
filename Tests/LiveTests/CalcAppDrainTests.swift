import Foundation
import Testing

/// PE drain with real processes: a registrar, two CalcApp PEs and CalcApp pool users; SIGUSR1
/// drains the busy PE, which moves its jobs to the other at the set rate, each resumed there
/// from its last cookie, and exits.
@Suite("Live: CalcApp PE drain", .serialized, .tags(.live), .timeLimit(.minutes(3)))
struct CalcAppDrainTests {
    @Test func aDrainedPEMovesEveryJobAtTheSetRateAndNoneIsLost() async throws {
        let registrar = try await LiveRegistrar.start()
        let common = ["--registrar", registrar.endpoint, "--capacity", "2000000", "--max-jobs", "8", "--cookie-interval", "200ms", "--log-level", "debug"]
        // Priority Least Used with a small increment: the first PE takes the jobs until its load
        // passes the second's increment.
        let draining = try liveProcess("pe-drained", ["calcapp-pe", "--increment", "0.05", "--drain-rate", "4"] + common)
        let other = try liveProcess("pe-other", ["calcapp-pe", "--increment", "0.9"] + common)
        let otherID = try #require(try await other.waitForReady()["id"])
        _ = try await draining.waitForReady()
        try await draining.waitForLine(containing: "registered")
        try await other.waitForLine(containing: "registered")
        // Six jobs of 3,000,000 calculations at once (9 s of work on one PE).
        let user = try liveProcess("pu", ["calcapp-pu", "--registrar", registrar.endpoint, "--users", "6", "--constant",
                                          "--request-size", "3000000", "--inter-arrival", "300ms", "--duration", "400ms",
                                          "--keep-alive", "500ms", "--drain", "60s", "--log-level", "info"])
        try await eventually(timeout: 15, "jobs run on the PE to be drained") {
            draining.lines.filter { $0.contains("accepted") }.count >= 3
        }
        try await Task.sleep(for: .seconds(1))   // … long enough for cookies
        let accepted = draining.lines.filter { $0.contains("accepted") }.count
        draining.signal(SIGUSR1)

        // The moves, timed here as they appear in the log (polled every 20 ms).
        var moves: [Date] = []
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !draining.lines.contains(where: { $0.contains("drained: no job left") }) {
            let seen = draining.lines.filter { $0.contains("moved a job to another PE") }.count
            while moves.count < seen { moves.append(Date()) }
            try await Task.sleep(for: .milliseconds(20))
        }
        moves += Array(repeating: Date(), count: max(0, draining.lines.filter { $0.contains("moved a job to another PE") }.count - moves.count))
        #expect(try await draining.waitForExit(timeout: 10) == 0, "the drained PE exits by itself: \(draining.lines.suffix(5))")
        #expect(draining.lines.contains { $0.contains("deregistered") || $0.contains("deregistration") }, "\(draining.lines.suffix(12))")
        #expect(moves.count >= 2, "jobs moved: \(moves.count) of \(accepted) accepted")
        if moves.count >= 2 {
            let span = moves.last!.timeIntervalSince(moves.first!)
            let allowed = Double(moves.count - 1) / 4
            #expect(span >= allowed - 0.1, "\(moves.count) moves in \(span) s: not faster than 4 per second")
            #expect(span <= allowed + 2, "\(moves.count) moves in \(span) s")
        }
        let summary = try #require(draining.lines.first { $0.hasPrefix("calcapp-pe") && $0.contains("moved") })
        #expect(summary.contains("moved \(moves.count)"), "\(summary)")

        // No job lost: every one completes, the moved ones on the other PE after one failover,
        // resumed from the cookie there.
        #expect(try await user.waitForExit(timeout: 90) == 0, "\(user.lines.suffix(10).joined(separator: "\n"))")
        let done = user.lines.filter { $0.hasPrefix("job ") }
        #expect(done.count == 6, "\(user.lines.suffix(10))")
        #expect(done.filter { $0.contains("failovers 1") && $0.contains("by \(otherID)") }.count == moves.count, "\(done)")
        #expect(other.lines.filter { $0.contains("resumed a job from its cookie") }.count == moves.count)
        let resumedFrom = other.lines.filter { $0.contains("resumed a job from its cookie") }
            .compactMap { $0.components(separatedBy: "completed=").last.flatMap { Double($0.prefix { $0.isNumber }) } }
        #expect(resumedFrom.allSatisfy { $0 > 0 }, "each resumed where it stopped, not from zero: \(resumedFrom)")
        other.signal(SIGTERM)
        withExtendedLifetime(registrar) {}
    }
}
