import ArgumentParser
import CalcApp
import CalcAppService
import Foundation
import Logging
import RSerPool

struct OffloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offload",
        abstract: "Run the offloading scenario's sweep live on loopback and write the report.",
        discussion: HelpText.reflow("""
        Every point of the sweep (numbers of pool users) and every repetition runs live, each
        component a process of its own: three registrars peering with ENRP (device, edge,
        remote), one calcapp-pe per PE (registered with its nearest registrar, its network
        delay from a delaying relay), and one calcapp-pu process with the users, all on
        loopback. --in-process runs the same in this process instead. --time-scale k makes it k times faster
        (capacities × k, inter-arrival times and delays ÷ k); results are in scenario time and
        the report says which k was used. The report has the same files as `edgepool simulate`,
        so live and simulated runs of one scenario compare directly.

        Example (a few minutes): edgepool offload --users 1 8 32 --duration 120s --repetitions 1 --time-scale 20 --out /tmp/live
        """)
    )

    @Option(help: ArgumentHelp("A scenario file (JSON); default: the built-in device/edge/cloud scenario.", valueName: "file"))
    var scenario: String?

    @Option(parsing: .upToNextOption, help: "Numbers of pool users to sweep (overrides the scenario).")
    var users: [Int] = []

    @Option(help: "Scenario duration of each run (overrides the scenario).")
    var duration: Duration?

    @Option(help: "Repetitions per point (overrides the scenario).")
    var repetitions: Int?

    @Option(help: "Run this many times faster than real time.")
    var timeScale: Double = 10

    @Option(help: "Transport: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Flag(help: "Run registrars, PEs and users in this process instead of as processes.")
    var inProcess = false

    @Option(help: ArgumentHelp("Directory for the report.", valueName: "directory"))
    var out: String = "offloading-live"

    @Option(help: "Log level (logs go to stderr).")
    var logLevel: Logger.Level = .error

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let chosen = try asValidation { try OffloadingScenario.chosen(file: scenario, users: users, duration: duration?.amount, repetitions: repetitions) }
        try asValidation { try ConfigurationError.check(timeScale, in: OffloadingLiveRun.timeScaleRange, "timeScale") }
        let wall = chosen.sweep.duration.seconds / timeScale * Double(chosen.sweep.users.count * chosen.sweep.repetitions)
        print(String(format: "live sweep: %d point(s) × %d repetition(s) × %@ at %gx: about %.0f s", chosen.sweep.users.count,
                     chosen.sweep.repetitions, chosen.sweep.duration.description as NSString, timeScale, wall))
        let points = try await OffloadingLiveSweep.run(chosen) { count, seed in
            if inProcess {
                var run = OffloadingLiveRun(scenario: chosen, users: count, timeScale: timeScale, seed: seed)
                run.transport = transport
                return try await run.run()
            }
            return try await OffloadingProcessRun(scenario: chosen, users: count, timeScale: timeScale, seed: seed, transport: transport).run()
        }
        let report = OffloadingReport(scenario: chosen, points: points,
                                      method: "live on loopback (\(inProcess ? "one process" : "a process per registrar, PE and the users"), \(transport.rawValue)), time scale \(formatNumber(timeScale))× (capacities × k, inter-arrival times and delays ÷ k; results in scenario time)")
        let directory = URL(fileURLWithPath: out)
        try report.write(to: directory)
        print(report.markdown())
        print("Wrote \(directory.path)/{runs.csv,summary.csv,summary.md,utilization.svg,times.svg,speed.svg,scenario.json}")
    }
}
