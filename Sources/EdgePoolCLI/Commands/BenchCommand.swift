import ArgumentParser
import Benchmarks
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (no pass/fail).",
        subcommands: [RegistrarBench.self, SimulatorBench.self, GatewayBench.self, PathsBench.self, AbuseBench.self, CompareBench.self]
    )
}

/// `--figures FILE`: every bench command appends its figures there (JSON lines) for
/// `edgepool bench compare` and `scripts/bench`.
struct BenchFiguresOption: ParsableArguments {
    @Option(help: ArgumentHelp("Also append the figures to this file as JSON lines (for edgepool bench compare).", valueName: "file"))
    var figures: String?

    func start() throws {
        if let figures { try asValidation { try BenchmarkFigures.write(to: figures) } }
    }
}

struct CompareBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a run's figures (--figures) with the ones recorded in BENCHMARKS.json.",
        discussion: HelpText.reflow("""
        Prints every figure of the run beside the recorded one, the day that one was
        measured, and the change (above 1× is better, whichever way the figure improves).
        Ratio figures — EdgePool against a baseline of its own in the same run, so they carry
        from one machine to another — fail the comparison when they are worse than recorded
        by more than --tolerance; figures against a peer proxy (whose own rate swings
        between runs) and absolute ones (events/s, µs) are shown as context. A figure in
        the file more than once keeps its best value. Exit status 1 when a ratio figure
        regressed. scripts/bench runs every benchmark twice and then this.
          edgepool bench gateway --only edgepool,haproxy --modes tcp-tcp --figures run.jsonl
          edgepool bench compare run.jsonl
        """)
    )

    @Argument(help: ArgumentHelp("The figures of a run (JSON lines from --figures).", valueName: "file"))
    var measured: String
    @Option(help: ArgumentHelp("The recorded figures.", valueName: "file"))
    var recorded = "BENCHMARKS.json"
    @Option(help: "A ratio figure this much worse than recorded is a regression (0.35: 35 %).")
    var tolerance = 0.35
    @Flag(help: "Then write the run's figures into the recorded file, dated today (a new baseline; commit it with the BENCHMARKS.md text that reports it).")
    var record = false

    func run() throws {
        let existing = FileManager.default.fileExists(atPath: recorded) ? try asValidation { try RecordedFigures.load(recorded) } : RecordedFigures(entries: [])
        let figures = try asValidation { try RecordedFigures.measured(measured) }
        let rows = existing.compare(figures, tolerance: tolerance)
        RecordedFigures.table(rows, tolerance: tolerance).forEach { print($0) }
        if record {
            let today = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
            try asValidation { try existing.recording(figures, measured: today, command: "scripts/bench").save(recorded) }
            print("recorded \(figures.count) figure(s) in \(recorded), dated \(today)")
            return
        }
        if rows.contains(where: \.regressed) { throw ExitCode(1) }
    }
}

struct SimulatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Simulator events/s and wall time: the default sweep, and the scenario scaled to 10,000 PEs and 100,000 users.",
        discussion: HelpText.reflow("""
        Method: (1) the built-in device/edge/cloud sweep (8 points × 5 repetitions × 300 s) on both
        cores; (2) one run of the same scenario with every PE group scaled so that the pool holds
        --elements PEs, and --users pool users, for --seconds simulated seconds, on one core. The
        baseline for the events/s ratio is (1)'s per-core rate in the same process.
        """)
    )

    @Option(help: "PEs in the scaled run.")
    var elements: Int = 10_000
    @Option(help: "Pool users in the scaled run.")
    var users: Int = 100_000
    @Option(help: "Simulated seconds of the scaled run.")
    var seconds: Double = 30
    @OptionGroup var figures: BenchFiguresOption

    func run() async throws {
        try figures.start()
        try await SimulatorBenchmark(elements: elements, users: users, seconds: seconds).run()
    }
}

struct RegistrarBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registrar",
        abstract: "Registrations/s, handle resolutions/s and memory per PE of a registrar process on loopback.",
        discussion: HelpText.reflow("""
        Method: for each pool size a fresh `edgepool registrar` process is started (TCP on
        127.0.0.1, keep-alives off for the run); this process registers the PEs over
        --connections associations with --window requests outstanding each (Least Used policy,
        random loads), then sends handle resolutions (3 PEs each, the default) for --seconds.
        Memory per PE = growth of the registrar's resident set (VmRSS) / PEs. The baseline, in
        the same run and registrar, is the resolution of an unknown pool: same transport and
        message path, no selection. Cost ratios compare time per resolution.
        """)
    )

    @Option(parsing: .upToNextOption, help: "Pool sizes to measure.")
    var sizes: [Int] = [1_000, 10_000, 100_000]
    @Option(help: "Associations used by the benchmark client.")
    var connections: Int = 4
    @Option(help: "Requests outstanding per association.")
    var window: Int = 32
    @Option(help: "Seconds of handle resolutions per measurement.")
    var seconds: Double = 3
    @Flag(help: "Also measure each size against a registrar with ASAP over TLS 1.3 (mutual authentication), beside the plain one.")
    var tls = false
    @OptionGroup var figures: BenchFiguresOption

    func run() async throws {
        try figures.start()
        try await RegistrarBenchmark(sizes: sizes, connections: connections, window: window, seconds: seconds, tls: tls).run()
    }
}

struct GatewayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Benchmark the gateway against a direct connection and peer proxies (socat, HAProxy, dante, shadowsocks-libev).",
        discussion: HelpText.reflow("""
        Everything runs on loopback in this run, on this machine: an origin (one
        thread per connection: bulk stream or echo), the proxies as processes, and
        blocking clients. For each mode (TCP→TCP, MPTCP→TCP, TCP→MPTCP) and proxy it
        measures
          throughput   median of three downloads of --seconds each
          connect      connect, SOCKS5 handshake, 1-byte echo: median of --connects
          round trip   64-byte echo on an open connection, median of --rounds
        and reports them beside the direct connection's (ratio, and latency added in
        µs). All proxies of a mode run at once and are measured in turns: three
        rounds, each with one download and a third of the connects and round trips
        per proxy (the direct connection included), the order rotating, so a slow
        spell of a shared machine does not fall on one of them only. MPTCP for the peers comes from `mptcpize run` (shadowsocks also gets
        --mptcp). Peers that are not installed are listed as missing (Debian: socat
        haproxy dante-server shadowsocks-libev mptcpize).

        UDP: datagrams through a SOCKS5 UDP association of `edgepool gateway socks`
        against datagrams straight to a UDP echo origin (round trip; rate with 32
        datagrams of 1,400 bytes in flight).

        Memory (--connections, default 10000): RSS of `edgepool gateway reverse`
        with that many idle relayed connections, then with all of them streaming,
        per connection.

          edgepool bench gateway --only edgepool,haproxy --modes mptcp-tcp
          edgepool bench gateway --gateway-flags='--read-size 65536 --threads 1'
        """)
    )

    @Option(help: "Seconds per download; throughput is the median of three.")
    var seconds = 2.0
    @Option(help: "Connections timed for the connect latency.")
    var connects = 200
    @Option(help: "Round trips timed on one connection.")
    var rounds = 2000
    @Option(help: "Connections for the memory measurement (0 skips it).")
    var connections = 10_000
    @Option(help: "Only these proxies (comma-separated: edgepool, nio, epoll, socat, haproxy, dante, shadowsocks).")
    var only: String?
    @Option(help: "Only these modes (comma-separated: tcp-tcp, mptcp-tcp, tcp-mptcp, udp).")
    var modes: String?
    @Flag(help: "Run everything on CPU 0 (the benchmark, origin, peers, gateways): latency then measures each proxy's own work without cross-core wake-ups, which dominate and vary on a shared machine; throughput is single-core.")
    var oneCore = false
    @Option(parsing: .unconditional,
            help: ArgumentHelp("Extra flags for every EdgePool gateway process, e.g. --gateway-flags='--read-size 65536 --threads 1'.",
                               valueName: "flags"))
    var gatewayFlags: String?
    @Flag(help: .hidden)
    var serveStreamTarget = false
    @Option(help: .hidden)
    var serveNioForwarder: Int?
    @Option(help: .hidden)
    var serveEpollForwarder: Int?
    @OptionGroup var figures: BenchFiguresOption

    func run() throws {
        try figures.start()
        try asValidation {
            try GatewayBenchmark(seconds: seconds, connects: connects, rounds: rounds, connections: connections, only: only, modes: modes,
                                 oneCore: oneCore, gatewayFlags: gatewayFlags, serveStreamTarget: serveStreamTarget,
                                 serveNioForwarder: serveNioForwarder, serveEpollForwarder: serveEpollForwarder).run()
        }
    }
}

struct PathsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Measure the path manager's own CPU cost with many MPTCP connections through the gateway pair.",
        discussion: HelpText.reflow("""
        Needs root. Makes two network namespaces (ep-pmbench-c, ep-pmbench-s) joined by
        two veth links and removes them at the end: in the client one `edgepool paths run
        --userspace` with both paths probed every 100 ms, and a gateway entry that carries
        each client connection over MPTCP to the exit in the server one, which hands it
        to a sink. Clients hold --connections open, each sending 64 bytes a second.

        It reads the CPU time (/proc/PID/task/*/schedstat) of the path manager and,
        as the baseline of the same run, of the entry gateway: idle (probes only), while
        the connections are set up (each gets a second subflow: until the kernel has
        answered as many MP_JOINs), --seconds of steady state, and path 2 down for 2 s
        and back (until every connection has rejoined). The target is at most 2 % of a
        core with 1,000 connections.

          edgepool bench paths
          edgepool bench paths --connections 5000 --seconds 20
        """)
    )

    @Option(help: "Connections held open through the gateway pair.")
    var connections = 1_000
    @Option(help: "Seconds of steady state measured.")
    var seconds = 10.0
    @Option(help: ArgumentHelp("The path manager's log level; info or debug prints its last lines at the end.", valueName: "level"))
    var pathManagerLogLevel = "warning"
    @Option(help: .hidden)
    var serveSink: Int?
    @Option(help: .hidden)
    var serveClients: Int?
    @Option(help: .hidden)
    var port: Int?
    @OptionGroup var figures: BenchFiguresOption

    func run() throws {
        if let serveSink { try PathBenchPeers.serveSink(port: serveSink) }
        if let serveClients, let port { try PathBenchPeers.driveClients(count: serveClients, port: port) }
        try figures.start()
        guard (1...50_000).contains(connections) else { throw ValidationError("--connections must be 1…50000, not \(connections)") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        try asValidation { try PathManagerBenchmark(connections: connections, seconds: seconds, pathManagerLogLevel: pathManagerLogLevel).run() }
    }
}

struct AbuseBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abuse",
        abstract: "A well-behaved client's service while others flood, never read, or hold every connection they may.",
        discussion: HelpText.reflow("""
        Method (every daemon with its default limits, in its own process, on loopback):
        (1) registrar: a pool of --pool-size PEs; a well-behaved PU sends one handle
        resolution at a time, 200 a second (under its association's limit), for --seconds
        (baseline), then again while --flooders associations each keep 32 registrations,
        then 32 resolutions of the whole pool, outstanding (measured from 1.5 s into the
        flood, once the bursts are spent); the figures are the PU's answered rate as a share
        of its baseline (target ≥ 0.5) and its latency.
        (2) registrar: --never-readers clients with a 4 KiB receive buffer send resolutions of
        the whole pool for --seconds and read nothing; the figure is the registrar's resident
        memory growth per such client (bounded by the association limits: 256 KiB of write
        buffer plus the pinned socket buffers).
        (3) gateway (reverse proxy to an echo server): the median time for a client to connect,
        send a byte and get it back, before and while another address holds 1,100 idle
        connections (its maximum is 1,000).
        """)
    )

    @Option(help: "Flooding associations.") var flooders = 20
    @Option(help: "PEs in the pool.") var poolSize = 512
    @Option(help: "Clients that never read.") var neverReaders = 10
    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: ArgumentHelp("Extra registrar flags, e.g. '--message-rate 0' to see the floods without the rate limit.", valueName: "flags"))
    var registrarFlags: String = ""
    @OptionGroup var figures: BenchFiguresOption

    func run() async throws {
        try figures.start()
        try await AbuseBenchmark(flooders: flooders, poolSize: poolSize, neverReaders: neverReaders, seconds: seconds, registrarFlags: registrarFlags).run()
    }
}
