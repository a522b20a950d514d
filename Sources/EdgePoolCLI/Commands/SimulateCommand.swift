import ArgumentParser
import CalcApp
import Foundation
import NIOCore

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate the offloading scenario (CalcApp pool users on a device, PEs on the device, at the edge, in clouds).",
        discussion: HelpText.reflow("""
        A discrete-event simulation that runs the same pool-policy and CalcApp PE/PU code as the
        live system, without sockets; deterministic per seed. Without --scenario it runs the
        device/edge/cloud experiment: 1 PE on the device (200,000 calc/s, PLU increment 100 %),
        2 at the edge (1,000,000/s, 10 %, 3 ms), 3 cloud sites (50 %, 20 ms) and 1 far site
        (50 %, 150 ms one way); requests of 1,000,000 calculations every 10 s per user
        (exponential); 1…64 users × 300 s × 5 repetitions.

        Writes runs.csv, summary.csv, summary.md and plots (SVG) to --out and prints the table.

        Examples:
          edgepool simulate
          edgepool simulate --users 1 8 64 --duration 60s --repetitions 2 --out /tmp/sweep
          edgepool simulate --print-scenario > my.json      # edit, then: edgepool simulate --scenario my.json
        """)
    )

    @Option(help: ArgumentHelp("A scenario file (JSON); default: the built-in device/edge/cloud scenario.", valueName: "file"))
    var scenario: String?

    @Option(parsing: .upToNextOption, help: "Numbers of pool users to sweep (overrides the scenario).")
    var users: [Int] = []

    @Option(help: "Simulated duration of each run (overrides the scenario).")
    var duration: Duration?

    @Option(help: "Repetitions per point (overrides the scenario).")
    var repetitions: Int?

    @Option(help: "Seed (overrides the scenario).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Directory for the CSV files, the Markdown summary and the plots.", valueName: "directory"))
    var out: String = "offloading-simulation"

    @Flag(help: "Print the scenario (JSON) and exit.")
    var printScenario = false

    func run() async throws {
        var chosen = try asValidation { try OffloadingScenario.chosen(file: scenario, users: users, duration: duration?.amount, repetitions: repetitions) }
        if let seed {
            chosen.seed = seed
        }
        if printScenario {
            print(String(decoding: chosen.encoded(), as: UTF8.self))
            return
        }

        let started = NIODeadline.now()
        let points = await OffloadingSweep.run(chosen) { done, total in
            FileHandle.standardError.write(Data("\rsimulated \(done)/\(total) runs".utf8))
        }
        let wall = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        FileHandle.standardError.write(Data("\n".utf8))
        let events = points.flatMap(\.runs).map(\.events).reduce(0, +)
        let report = OffloadingReport(scenario: chosen, points: points,
                                      method: "discrete-event simulation, seed \(chosen.seed), \(events) events in \(String(format: "%.1f", wall)) s wall time")
        let directory = URL(fileURLWithPath: out)
        try report.write(to: directory)
        print(report.markdown())
        print("Wrote \(directory.path)/{runs.csv,summary.csv,summary.md,utilization.svg,times.svg,speed.svg,scenario.json}")
        print(String(format: "%d events in %.2f s: %.0f events/s", events, wall, Double(events) / max(wall, 1e-9)))
    }
}
