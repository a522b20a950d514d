import CalcApp
import Foundation

/// Every point and repetition of a scenario's sweep run live — in this process
/// (``OffloadingLiveRun``), as processes on loopback or in a testbed
/// (``OffloadingProcessRun``) — with a progress line per run.
public enum OffloadingLiveSweep {
    /// Runs `run(users, seed)` for each point and repetition; the seeds are the simulator's.
    public static func run(_ scenario: OffloadingScenario, progress: (String) -> Void = { print($0); fflush(nil) },
                           _ run: (_ users: Int, _ seed: UInt64) async throws -> OffloadingRunResult) async throws -> [SweepPoint] {
        var points: [SweepPoint] = []
        for count in scenario.sweep.users {
            var runs: [OffloadingRunResult] = []
            for repetition in 0..<scenario.sweep.repetitions {
                let seed = scenario.seed &* 1_000_003 &+ UInt64(count) &* 101 &+ UInt64(repetition)
                let result = try await run(count, seed)
                progress(String(format: "  %3d users, repetition %d: %d completed, handling speed %.0f calc/s", count, repetition + 1,
                                result.completed, result.handlingSpeed))
                runs.append(result)
            }
            points.append(SweepPoint(users: count, runs: runs))
        }
        return points
    }
}
