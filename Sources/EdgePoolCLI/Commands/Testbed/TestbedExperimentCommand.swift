import ArgumentParser
import CalcApp
import RSerPool
import Testbed
import TestbedRunner

/// `edgepool testbed experiment …`: the built-in experiments (runtimes in TestbedRunner).
struct TestbedExperiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment", abstract: "Built-in experiments.",
        subcommands: [AccessAggregation.self, InterfaceRecovery.self, Offloading.self])

    struct AccessAggregation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "access-aggregation",
            abstract: "Wi-Fi + cellular: TCP per path vs MPTCP (direct and through the gateway), per congestion control.",
            discussion: HelpText.reflow("""
            Links (delays one way, as Mininet's): client–wifi 20 Mbit/s 20 ms, client–cell
            10 Mbit/s 100 ms 1 % loss, wifi–server and cell–server 50 Mbit/s. Delay and loss
            go through the userspace link emulator where the kernel lacks netem. Writes
            runs.csv, summary.md and goodput.svg (mean ± standard deviation). Each run
            also measures request/response latency on the same path under that load.
            """))

        @Option(help: "Seconds of bulk traffic per run.") var seconds = 10.0
        @Option(help: "Runs per congestion control and path.") var repetitions = 3
        @Option(help: "Congestion controls, comma-separated.") var congestionControls = "cubic,reno,bbr"
        @Option(help: "Directory for the report.") var out = "testbed-results"

        func run() throws {
            try asValidation {
                try AccessAggregationExperiment(seconds: seconds, repetitions: repetitions, congestionControls: congestionControls, out: out).run()
            }
        }
    }

    struct InterfaceRecovery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recovery",
            abstract: "Recovery time after an interface goes down and up, repeated (mean, median, standard deviation).",
            discussion: HelpText.reflow("""
            The topology of `access-aggregation` (Wi-Fi 20 Mbit/s 20 ms, cellular 10 Mbit/s
            100 ms 1 % loss). One flow for the whole run; each cycle takes client:wlan down for
            --down-seconds, then leaves it up for --up-seconds. Recovery times use the flow's
            received bytes: the time until its rate over 0.5 s first reaches 80 % of the rate it
            settles at in the second half of the phase, staying there. Writes recovery.csv,
            summary.md and the run's interfaces.csv, flows.csv and rates.svg.
            --path-manager both runs it with the kernel's path manager and with EdgePool's
            (one directory each) and puts the two side by side.
            """))

        @Option(help: "Down/up cycles.") var cycles = 5
        @Option(help: "Seconds the interface stays down in each cycle.") var downSeconds = 8.0
        @Option(help: "Seconds it stays up after each return (and before the first loss).") var upSeconds = 12.0
        @Option(help: "Congestion control of client and server.") var congestionControl = "bbr"
        @Option(help: "mptcp (end to end) or gateway (TCP through EdgePool's gateway pair).") var transport = Scenario.Traffic.Transport.mptcp.rawValue
        @Option(help: "The client's path manager: kernel, edgepool (pm=edgepool), or both (one run each, side by side).")
        var pathManager: InterfaceRecoveryExperiment.PathManagerChoice = .kernel
        @Flag(help: "EdgePool's path manager replaces the first subflow when Wi-Fi is lost (paths run --first-subflow replace).")
        var replaceFirstSubflow = false
        @Option(help: "Directory for the report.") var out = "testbed-results"

        var experiment: InterfaceRecoveryExperiment {
            var experiment = InterfaceRecoveryExperiment(cycles: cycles, downSeconds: downSeconds, upSeconds: upSeconds,
                                                         congestionControl: congestionControl, transport: transport, pathManager: pathManager, out: out)
            experiment.replacesFirstSubflow = replaceFirstSubflow
            return experiment
        }

        func validate() throws { try asValidation { try experiment.validate() } }
        func run() throws { try asValidation { try experiment.run() } }
    }

    struct Offloading: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "offloading",
            abstract: "The CalcApp offloading scenario over emulated links: a namespace per site, delays on the links.",
            discussion: HelpText.reflow("""
            The device (UE) is a namespace with one link per remote site (edge, each cloud),
            each link with the site's one-way delay ÷ the time scale. Registrars: on the device,
            at the edge, at the first cloud site (ENRP between them over the links); every PE
            in its site's namespace registered with its nearest registrar; the users on the
            device. The report has the files of `edgepool offload` and `edgepool simulate`, so
            the three compare directly.

            Example: edgepool testbed experiment offloading --users 1 8 32 --duration 120s --repetitions 1 --out /tmp/offload-testbed
            """))

        @Option(help: ArgumentHelp("A scenario file (JSON); default: the built-in device/edge/cloud scenario.", valueName: "file"))
        var scenario: String?
        @Option(parsing: .upToNextOption, help: "Numbers of pool users to sweep (overrides the scenario).") var users: [Int] = []
        @Option(help: "Scenario duration of each run (overrides the scenario).") var duration: Duration?
        @Option(help: "Repetitions per point (overrides the scenario).") var repetitions: Int?
        @Option(help: "Run this many times faster than real time (link delays ÷ k too).") var timeScale: Double = 10
        @Option(help: "Transport: mptcp (falls back to tcp) or tcp.") var transport: TransportProtocol = .mptcp
        @Option(help: ArgumentHelp("Directory for the report.", valueName: "directory")) var out = "offloading-testbed"

        func run() async throws {
            let chosen = try asValidation { try OffloadingScenario.chosen(file: scenario, users: users, duration: duration?.amount, repetitions: repetitions) }
            let experiment = OffloadingExperiment(scenario: chosen, timeScale: timeScale, transport: transport, out: out)
            try asValidation { try experiment.validate() }
            do { try await experiment.run() } catch let error as TestbedError { throw ValidationError(error.description) }
        }
    }
}

struct TestbedRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a scenario: traffic, link events, per-interface recording, report with plots.",
        discussion: HelpText.reflow("""
          edgepool testbed run Scenarios/isp-failover.scenario --out results/
        A scenario file names its topology, duration, the interfaces to record, traffic,
        user commands and link events, one per line:
          traffic bulk|requests|video SENDER -> RECEIVER:SENDER-ADDRESS [mptcp|tcp|gateway] [key=value…]
            requests: size=1000 every=100ms   video: bitrate=2mbit buffer=64MiB preroll=2s
          command HOST [at 10s] -- PROGRAM ARGUMENTS…
          at 25s down|up|blackhole|restore|rate=5mbit HOST:IF
        Writes interfaces.csv (in/out bit/s per recorded interface, bwm-ng style),
        flows.csv (bytes received over time per flow), requests.csv (latency per
        request), command-N.log, summary.md (per phase rates; per flow bytes
        sent/received/lost, stalls and recovery after each event, request latencies,
        video frames lost and the viewer's interruptions) and rates.svg (with the phase
        boundaries marked). --phase-seconds scales the timeline.
        """))

    @Argument(help: "Scenario file.") var file: String
    @Option(help: "Directory for the report.") var out = "testbed-results"
    @Option(help: "Stretch or shrink the timeline so that each phase (the time between events) takes this long.") var phaseSeconds: Double?

    func run() throws {
        _ = try asValidation { try ScenarioPlayer.run(file: file, out: out, phaseSeconds: phaseSeconds) }
    }
}

extension InterfaceRecoveryExperiment.PathManagerChoice: ExpressibleByArgument {}
