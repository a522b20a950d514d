import ArgumentParser
import CalcApp
import CalcAppService
import Foundation
import Logging
import ProcessSupport
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

struct CalcAppPECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calcapp-pe",
        abstract: "Run a CalcApp pool element: a compute service with processor sharing, registered in a pool.",
        discussion: HelpText.reflow("""
        Jobs share --capacity calculations/s equally; at --max-jobs a further request is
        rejected. The load (jobs / max jobs) goes to the registrar on every change. Each job's
        state goes to its pool user as a cookie sealed with --secret every --cookie-interval or
        --cookie-calculations, so that another PE of the pool (same secret) resumes it after a
        failure. SIGTERM/SIGINT: last cookies to every pool user, deregistration, exit.
        SIGUSR1 drains the PE: it deregisters, takes no new session, and moves its jobs to
        other PEs at --drain-rate sessions/s (each with a last cookie; the pool user resumes
        it elsewhere), then exits.

        --config takes the same settings as JSON (keys as the flags: pool, capacity,
        maxJobs, secret, cookieInterval, …).

        Example: edgepool calcapp-pe --pool CalcAppPool --capacity 1000000 --increment 0.1 --delay 3ms
        """)
    )

    @OptionGroup var common: CommonOptions
    @Option(help: ArgumentHelp("Registrar; repeatable. [default: 127.0.0.1:3863]", valueName: "host:port"))
    var registrar: [Endpoint] = []
    @Option(help: "The pool handle. [default: CalcAppPool]") var pool: String?
    @Option(help: "Calculations per second. [default: 1000000]") var capacity: Double?
    @Option(help: "Jobs at once; one more is rejected. [default: 4]") var maxJobs: Int?
    @Option(help: "Pool policy (plu, lu, rr, …). [default: plu]") var policy: String?
    @Option(help: "Priority Least Used load increment, 0…1. [default: 0.1]") var increment: Double?
    @Option(help: ArgumentHelp("Where the service listens. [default: 127.0.0.1:0]", valueName: "host:port")) var listen: Endpoint?
    @Option(help: "One-way delay added by a relay in front of the service. [default: 0s]") var delay: Duration?
    @Option(help: "The pool's cookie secret (every PE of the pool needs the same). [default: edgepool]") var secret: String?
    @Option(help: "A cookie at least this often. [default: 5s]") var cookieInterval: Duration?
    @Option(help: "A cookie at least every this many calculations. [default: 5000000]") var cookieCalculations: Double?
    @Option(help: "Transport: mptcp (falls back to tcp) or tcp. [default: mptcp]") var transport: TransportProtocol?
    @Option(help: ArgumentHelp("PE identifier (decimal or 0x…); random if not given.", valueName: "id")) var identifier: String?
    @Option(help: "Sessions per second a drain (SIGUSR1) moves to other PEs. [default: 10]") var drainRate: Double?
    @Option(help: ArgumentHelp("HTTP address for /metrics (off unless given).", valueName: "host:port")) var status: Endpoint?
    @Flag(help: "At exit, print the statistics as one JSON line.") var json = false

    func run() async throws {
        var flags = CalcAppPoolElementSettings()
        flags.registrar = registrar.nonEmpty
        flags.pool = pool
        flags.capacity = capacity
        flags.maxJobs = maxJobs
        flags.policy = policy
        flags.increment = increment
        flags.listen = listen
        flags.delay = delay
        flags.secret = secret
        flags.cookieInterval = cookieInterval
        flags.cookieCalculations = cookieCalculations
        flags.transport = transport
        flags.identifier = identifier
        flags.drainRate = drainRate
        flags.status = status
        let settings = flags.merged(over: try loadSettings(common.config, as: CalcAppPoolElementSettings.self))
        Bootstrap.run(logLevel: try logLevel(common.logLevel, file: settings.logLevel))
        let statistics = try await asValidation { try await CalcAppPoolElementDaemon.run(settings, metrics: Bootstrap.metricsText) }
        if json {
            print(String(decoding: try JSONEncoder().encode(statistics), as: UTF8.self))
            return
        }
        print(String(format: "calcapp-pe %@: accepted %d, rejected %d, completed %d, moved %d, busy %.1f s", statistics.identifier as NSString,
                     statistics.accepted, statistics.rejected, statistics.completed, statistics.moved, statistics.busySeconds))
    }
}

struct CalcAppPUCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calcapp-pu",
        abstract: "Run CalcApp pool users: generate requests, have the pool handle them, print each one.",
        discussion: HelpText.reflow("""
        Each of --users users sends requests of --request-size calculations every
        --inter-arrival (exponentially distributed unless --constant), queues them and has them
        handled one at a time by the PE the registrar selects; a failing PE is reported and the
        job continues elsewhere from its last cookie. One line per completed request:
          job 1.3: 1000000 calculations by $5a1e… in 1.23 s (queuing 0.00, start-up 0.01, processing 1.22), failovers 0
        Exit status 0 when every request completed (requests still unfinished after --drain count as failed).
        With --csp the users send Component Status reports (their requests, the PEs that
        completed the last ones as associations) to rsplib's cspmonitor, and a final one at the end.

        Example: edgepool calcapp-pu --users 4 --duration 60s
        """)
    )

    @Option(help: ArgumentHelp("Registrar; repeatable. [default: 127.0.0.1:3863]", valueName: "host:port"))
    var registrar: [Endpoint] = []
    @Option(help: "The pool handle.") var pool: String = "CalcAppPool"
    @Option(help: "Pool users.") var users: Int = 1
    @Option(help: "How long to generate requests.") var duration: Duration = Duration(.seconds(30))
    @Option(help: "Then wait up to this long for the requests in hand to finish.") var drain: Duration = Duration(.seconds(30))
    @Option(help: "Mean calculations per request.") var requestSize: Double = 1_000_000
    @Option(help: "Mean time between requests of one user.") var interArrival: Duration = Duration(.seconds(10))
    @Flag(help: "Constant sizes and intervals instead of exponential ones.") var constant = false
    @Option(help: "Seed for the request generator.") var seed: UInt64 = 1
    @Option(help: "Keep-alive interval and timeout towards the PE.") var keepAlive: Duration = Duration(.seconds(5))
    @Option(help: "Wait after a rejection (doubling per further rejection).") var retryDelay: Duration = Duration(.milliseconds(100))
    @Option(help: "The longest wait after rejections.") var maxRetryDelay: Duration = Duration(.milliseconds(1600))
    @Flag(help: "Print each request and the summary as JSON lines.") var json = false
    @Option(help: "Transport: mptcp (falls back to tcp) or tcp.") var transport: TransportProtocol = .mptcp
    @Option(help: "Log level.") var logLevel: Logger.Level = .warning
    @OptionGroup var csp: ComponentStatusOptions

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let kind: Distribution.Kind = constant ? .constant : .exponential
        var configuration = CalcAppPoolUsers.Configuration(
            users: users, poolHandle: PoolHandle(pool),
            registrars: try asValidation { try RegistrarList.fromSettings(registrar, transport: transport, announce: nil, announceInterface: nil) },
            requestSize: Distribution(kind, mean: requestSize),
            interArrival: Distribution(kind, mean: Double(interArrival.amount.nanoseconds) / 1e9))
        configuration.seed = seed
        configuration.transport = transport
        configuration.client.keepAliveInterval = keepAlive.amount
        configuration.client.keepAliveTimeout = keepAlive.amount
        configuration.client.retryDelay = retryDelay.amount
        configuration.client.maximumRetryDelay = maxRetryDelay.amount
        let asJSON = json
        let pool = CalcAppPoolUsers(configuration: configuration, logger: Logger(label: "edgepool.calcapp.pu"))
        pool.onCompletion { record in
            print(asJSON ? record.jsonLine : record.line)
            fflush(nil)
        }
        // Generate for --duration, then let the requests in hand finish.
        try asValidation { try configuration.validate() }
        let outcome = try await PoolUserStatus.reporting(to: csp.csp, interval: csp.cspInterval, identifier: .random(in: 1...UInt64(UInt32.max)),
                                                         logger: Logger(label: "edgepool.calcapp.pu"), snapshot: { pool.statusSnapshot() }) {
            try await pool.run(for: duration.amount, drain: drain.amount)
        }
        if json {
            print(#"{"submitted":\#(outcome.submitted),"completed":\#(outcome.records.count),"failovers":\#(outcome.failovers),"rejections":\#(outcome.rejections)}"#)
            return
        }
        print("\(outcome.submitted) submitted, \(outcome.records.count) completed, \(outcome.failovers) failover(s), \(outcome.rejections) rejection(s)")
        if outcome.records.count < outcome.submitted { throw ExitCode(1) }
    }
}
