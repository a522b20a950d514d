import ArgumentParser
import CalcApp
import CalcAppService
import Foundation
import Logging
import RSerPool

struct OffloadingDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offloading",
        abstract: "The offloading scenario live: a device's pool users, PEs on the device, at the edge and in clouds.",
        discussion: HelpText.reflow("""
        Three registrars (device, edge, remote site) peering with ENRP, the scenario's seven
        CalcApp PEs and --users pool users run in this process and talk ASAP, ENRP and CalcApp
        over real sockets on loopback (MPTCP, falling back to TCP); each PE group's network
        delay comes from a delaying relay. The pool policy is Priority Least
        Used: the edge takes the work, the clouds join as it fills, the device's own PE serves
        only under overload. Half-way, the busiest edge PE crashes; its jobs fail over to
        other PEs — from their cookies where the PE had sent one (every 5 s or 5·10⁶
        calculations; most jobs here are shorter and start afresh) — and the table shows each
        failover and where the job completed. With --drain-rate R the PE is drained instead:
        deregistered, it takes no new session and moves its jobs at R per second, each with
        a last cookie; the summary gives the moved jobs' handling time against the others'.
        Time runs --time-scale times faster (capacities × k, inter-arrival times and delays
        ÷ k); all figures are in scenario time.
        """)
    )

    @Option(help: "Pool users (the device's concurrent request streams).")
    var users: Int = 32

    @Option(help: "Scenario seconds to run.")
    var duration: Duration = Duration(.seconds(300))

    @Option(help: "Run this many times faster than real time.")
    var timeScale: Double = 10

    @Flag(help: "Do not crash an edge PE half-way.")
    var noCrash = false

    @Option(help: "Drain the busiest edge PE half-way instead of crashing it, moving this many sessions per (scenario) second.")
    var drainRate: Double?

    @Option(help: "Transport: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Option(help: "Log level (logs go to stderr).")
    var logLevel: Logger.Level = .error

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        var scenario = OffloadingScenario.deviceEdgeCloud
        scenario.sweep.duration = ScenarioDuration(seconds: Double(duration.amount.nanoseconds) / 1e9)
        var run = OffloadingLiveRun(scenario: scenario, users: users, timeScale: timeScale, seed: scenario.seed)
        run.transport = transport
        if let drainRate {
            guard drainRate > 0, drainRate.isFinite else { throw ValidationError("--drain-rate must be above 0") }
            run.disruption = .init(group: "edge", at: 0.5, kind: .drain(sessionsPerSecond: drainRate))
        } else if !noCrash {
            run.disruption = .init(group: "edge", at: 0.5, kind: .crash)
        }
        try asValidation { try run.validate() }
        let table = OffloadingLiveTable(scenario: scenario, users: users, timeScale: timeScale)
        table.header.forEach { print($0) }
        let result = try await run.run(snapshotEvery: .seconds(1)) { snapshot in
            table.lines(snapshot).forEach { print($0) }
            fflush(nil)
        }
        table.summary(result).forEach { print($0) }
        guard result.completed > 0 else { throw ExitCode(1) }
    }
}
