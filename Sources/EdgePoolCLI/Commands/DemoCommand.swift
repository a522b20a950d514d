import ArgumentParser
import Foundation
import Logging
import RSerPool

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run EdgePool's experiments on loopback, in this process, with nothing to set up.",
        subcommands: [OffloadingDemoCommand.self, EchoDemoCommand.self],
        defaultSubcommand: OffloadingDemoCommand.self
    )
}

struct EchoDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Run a registrar, four pool elements and a crowd of pool users in one process, and watch the policy work.",
        discussion: HelpText.reflow("""
        Everything runs on loopback in this process, nothing to install or configure:
          • a registrar (ASAP over MPTCP, falling back to TCP),
          • four echo PEs under Priority Least Used, like the offloading scenario: two at the
            edge (load increment 10 %), one in the cloud (50 %), one on the device (100 %);
            a PE's load is its open sessions / --max-sessions, re-registered on every change,
          • --users pool users, each opening sessions (resolve → select → connect → echo →
            hold a while → close) back to back.
        Edge PEs take the work first, the cloud joins as they fill up, the device only under
        overload. Part-way through, edge-1 crashes (no deregistration): the registrar drops it
        when its association closes and the users fail over.
        """)
    )

    @Option(help: "How long to run.")
    var duration: Duration = Duration(.seconds(12))

    @Option(help: "Concurrent pool users.")
    var users: Int = 8

    @Option(help: "Sessions that make a PE 100 % loaded.")
    var maxSessions: Int = 4

    @Option(help: "Mean session length (exponentially distributed).")
    var session: Duration = Duration(.milliseconds(800))

    @Option(help: "When edge-1 crashes, as a fraction of --duration (0 or ≥1: never).")
    var crashAt: Double = 0.5

    @Option(help: "Transport for everything: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Option(help: "Log level (logs go to stderr).")
    var logLevel: Logger.Level = .warning

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let logger = Logger(label: "edgepool.demo")
        let demo = EchoDemo(duration: duration.amount, users: users, maxSessions: maxSessions, meanSession: session.amount,
                            crashAt: crashAt, transport: transport, logger: logger)
        try asValidation { try demo.validate() }
        let result = try await demo.run { line in
            print(line)
            fflush(nil)
        }
        guard result.answered > 0 else { throw ExitCode(1) }
    }
}
