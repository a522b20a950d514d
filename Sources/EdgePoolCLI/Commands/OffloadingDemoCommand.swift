import ArgumentParser
import CalcApp
import CalcAppService
import Foundation
import Logging
import NIOCore
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
        failover and where the job completed. Time runs --time-scale times faster (capacities × k, inter-arrival times
        and delays ÷ k); all figures are in scenario time.
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

    @Option(help: "Transport: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Option(help: "Log level (logs go to stderr).")
    var logLevel: Logger.Level = .error

    func validate() throws {
        guard (1...500).contains(users) else { throw ValidationError("--users must be 1…500") }
        guard timeScale >= 1, timeScale <= 100 else { throw ValidationError("--time-scale must be 1…100") }
    }

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        var scenario = OffloadingScenario.deviceEdgeCloud
        scenario.sweep.duration = ScenarioDuration(seconds: Double(duration.amount.nanoseconds) / 1e9)
        var run = OffloadingLiveRun(scenario: scenario, users: users, timeScale: timeScale, seed: scenario.seed)
        run.transport = transport
        if !noCrash { run.crash = ("edge", 0.5) }
        let groups = scenario.elements.map(\.name)
        print("Offloading live: \(users) pool users on the device; PEs: " + scenario.elements.map { "\($0.count)× \($0.name) (\(formatRate($0.capacity)), PLU +\(Int($0.increment * 100)) %, \($0.delay))" }.joined(separator: ", "))
        print("time scale \(formatNumber(timeScale))×: \(scenario.sweep.duration) of scenario time in \(String(format: "%.0f", scenario.sweep.duration.seconds / timeScale)) s\n")
        print("  scenario   " + groups.map { $0.padding(toLength: 11, withPad: " ", startingAt: 0) }.joined() + "done  handling speed")
        print("  time       " + groups.map { _ in "used cap.  " }.joined())
        let result = try await run.run(snapshotEvery: .seconds(1)) { snapshot in
            if snapshot.elapsed < 0 {
                for event in snapshot.events { print("  -- \(event): no cookies, no deregistration; its jobs fail over --") }
            } else {
                let cells = snapshot.utilization.map { String(format: "%5.1f %%    ", 100 * $0.value) }.joined()
                print(String(format: "  %5.0f s    ", snapshot.elapsed) + cells + String(format: "%4d  %@", snapshot.completed, formatRate(snapshot.handlingSpeed) as NSString))
                for event in snapshot.events { print("     · \(event)") }
            }
            fflush(nil)
        }
        print("")
        print("summary (\(users) users, \(scenario.sweep.duration)):")
        print("  requests: \(result.submitted) submitted, \(result.completed) completed, \(result.inFlight) queued or in progress at the end; \(result.failovers) failover(s), \(result.rejections) rejection(s)")
        print(String(format: "  handling time %.2f s = queuing %.2f + start-up %.2f + processing %.2f; handling speed %@",
                     result.handlingTime, result.queuingTime, result.startupTime, result.processingTime, formatRate(result.handlingSpeed) as NSString))
        for group in groups {
            print("  " + group.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: " used capacity %5.1f %%, completed %d", 100 * (result.utilization[group] ?? 0), result.completedBy[group] ?? 0))
        }
        print("\nFor the whole sweep: edgepool simulate (seconds), or edgepool offload (live).")
        guard result.completed > 0 else { throw ExitCode(1) }
    }
}

func formatRate(_ value: Double) -> String {
    value >= 1_000_000 ? String(format: "%.2fM/s", value / 1_000_000) : String(format: "%.0fk/s", value / 1000)
}
