import ArgumentParser
import Foundation
import PathManager
import PathManagerService
import RSerPool
import RSerPoolWire

struct PathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "EdgePool's MPTCP path manager: paths retired at once when they fail, restored with fresh subflows when they return.",
        discussion: HelpText.reflow("""
        Talks to the kernel's mptcp_pm generic netlink family of the current network
        namespace, like `ip mptcp endpoint`. Changing endpoints needs CAP_NET_ADMIN.
          edgepool paths run --path wan1=192.0.2.2 --path wan2=198.51.100.2,backup --probe 203.0.113.1:9
          edgepool paths status --status 127.0.0.1:9093
          edgepool paths endpoints
          edgepool paths endpoint add 192.0.2.2 --id 2 --flags subflow --dev wan2
          edgepool paths endpoint backup 2
          edgepool paths endpoint delete 2
        """),
        subcommands: [PathsRunCommand.self, PathsStatusCommand.self, PathsEndpointsCommand.self, PathsEndpointCommand.self]
    )
}

struct PathsStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a running path manager's paths: in use or down (and why), since when, how often retired and restored.",
        discussion: HelpText.reflow("""
        Reads /paths from the --status address the path manager was started with:
          edgepool paths run --userspace --path wan1=10.0.1.2 --path wan2=10.0.2.2,backup --probe 10.0.9.1:9 --status 127.0.0.1:9093
          edgepool paths status --status 127.0.0.1:9093
        """))

    @Option(help: ArgumentHelp("The path manager's status address.", valueName: "host:port"))
    var status: Endpoint = Endpoint(host: "127.0.0.1", port: 9093)
    @Flag(help: "Print the raw JSON.") var json = false

    func run() async throws {
        let body: String
        do {
            body = try await StatusClient.get(status, path: "/paths")
        } catch {
            printError("edgepool paths status: cannot read \(status)/paths (is `edgepool paths run --status \(status)` running?): \(error)")
            throw ExitCode(1)
        }
        if json {
            print(body)
            return
        }
        print(try JSONDecoder().decode(PathManagerStatus.self, from: Data(body.utf8)).report)
    }
}

struct PathsEndpointsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "endpoints", abstract: "List the in-kernel PM's endpoints.")

    func run() throws {
        let manager = try kernelPathManager()
        for endpoint in try manager.endpoints().sorted(by: { $0.id < $1.id }) { print(KernelPathManager.describe(endpoint)) }
    }
}

struct PathsEndpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "endpoint", abstract: "Add, delete or change an endpoint.",
                                                    subcommands: [Add.self, Delete.self, Backup.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Add an endpoint: with 'subflow' the kernel opens a subflow from it on every established connection.")
        @Argument(help: "The local address.") var address: String
        @Option(help: "Endpoint id (1–255). [default: the kernel picks]") var id: UInt8 = 0
        @Option(help: "Flags, comma-separated: signal, subflow, backup, fullmesh.") var flags: String = "subflow"
        @Option(help: "Port of its own for MP_JOINs (0: none).") var port: UInt16 = 0
        @Option(help: "Interface name.") var dev: String?

        func run() throws {
            guard let ip = IPAddress(address) else { throw ValidationError("'\(address)' is not an IP address") }
            let endpointFlags = try asValidation { try MPTCPPathManager.EndpointFlags(parsing: flags) }
            try asValidation { try kernelPathManager().add(address: ip, id: id, flags: endpointFlags, port: port, device: dev) }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Delete an endpoint: its subflows close on every connection (RM_ADDR).")
        @Argument(help: "Endpoint id.") var id: UInt8
        func run() throws { try kernelPathManager().delete(id: id) }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "backup", abstract: "Mark an endpoint backup (MP_PRIO), or clear it with --off.")
        @Argument(help: "Endpoint id.") var id: UInt8
        @Flag(help: "Clear the backup flag.") var off = false
        func run() throws { try kernelPathManager().setBackup(id: id, !off) }
    }
}

private func kernelPathManager() throws -> KernelPathManager {
    try asValidation { try KernelPathManager() }
}

struct PathsRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Manage this namespace's MPTCP paths (in-kernel PM, or --userspace) until SIGTERM.",
        discussion: HelpText.reflow("""
        Each --path is IF=ADDR, or IF=auto / IF=auto6 (the interface's IPv4 / global IPv6
        address, whichever it has), with options after commas: backup (its subflows are used
        only while no active path works), noprobe (the link state alone decides), id=N
        (the endpoint id, default its position), rate=RATE (its egress capped with tc's
        tbf, e.g. rate=8mbit; removed at the end; an interface with a root qdisc somebody
        else chose is refused), port=P, signal, fullmesh (subflows to
        every address the peer announced, not only the connection's). A path whose link goes
        down, whose probes go unanswered (3 in a row), is retired at once: its endpoint is
        deleted, its subflows close on every connection. When it is good again (2 answered
        probes and a 100 ms hold that doubles while it flaps) its endpoint is added back:
        the kernel opens a fresh subflow on every connection. Probes are TCP handshakes from
        the path's address to --probe (a closed port on the peer answers with a reset).

        --userspace carries the same decisions out per connection: subflows from every path
        in use to every address of the peer; a lost path's subflows are destroyed and the
        peer told (RM_ADDR) at once, fresh ones created when it returns; a backup path's
        subflows are backup subflows, promoted while no active path is in use. Started
        again after a crash, it picks up the connections it managed (sock_diag).

        Every path follows its interface: its address removed, the path is retired; a new
        address on the interface (renumbering, a new lease) becomes the path's, with fresh
        subflows from it and the old ones closed. Per-source routing rules for a new address
        are the network's (a DHCP hook's) business; the path's routes are put back.

        On SIGTERM every endpoint is put back for the kernel's own PM. --config takes
        the same settings as JSON (keys as the flags: path, probe, probeInterval,
        probeFailures, userspace, status, …).
          edgepool paths run --path wan1=10.0.1.2 --path wan2=10.0.2.2 --probe 10.0.9.1:9
          edgepool paths run --userspace --path wan1=10.0.1.2 --path wan2=10.0.2.2,backup --probe 10.0.9.1:9
          edgepool paths run --path c2=10.78.2.1,noprobe
          edgepool paths run --userspace --path eth0=auto --path wlan0=auto,backup --probe 10.0.9.1:9
        """)
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("path"), help: ArgumentHelp("A path: IF=ADDR|auto|auto6[,backup][,noprobe][,rate=RATE][,fullmesh][,id=N][,port=P][,signal]; repeatable.", valueName: "path"))
    var paths: [String] = []

    @Option(help: ArgumentHelp("Where the probes go (ADDR:PORT; [v6]:PORT).", valueName: "address:port"))
    var probe: String?

    @Option(help: "Time between probes of a path. [default: 100ms]") var probeInterval: Duration?
    @Option(help: "A probe unanswered this long failed; longer than the slowest path's round trip. [default: 300ms]") var probeTimeout: Duration?
    @Option(help: "Probes unanswered in a row that retire a path. [default: 3]") var probeFailures: Int?
    @Option(help: "Probes answered in a row before a returning path is held. [default: 2]") var probeSuccesses: Int?
    @Option(help: "How long a returning path must stay good before it is used (doubled while it flaps). [default: 100ms]") var returnHold: Duration?
    @Option(help: ArgumentHelp("HTTP address for /metrics (off unless given).", valueName: "host:port"))
    var status: Endpoint?
    @Flag(help: "Use the kernel's userspace PM (net.mptcp.pm_type=1): subflows per connection from every path to every address the peer announced, not endpoints.")
    var userspace = false
    @Option(help: "--userspace: when a connection's first path is lost, keep its first subflow to recover by itself, or replace it (closed, the peer told at once: faster, for servers that keep listening). [default: keep]")
    var firstSubflow: String?

    func run() throws {
        var flags = PathManagerSettings()
        flags.path = paths.nonEmpty
        flags.probe = probe
        flags.probeInterval = probeInterval
        flags.probeTimeout = probeTimeout
        flags.probeFailures = probeFailures
        flags.probeSuccesses = probeSuccesses
        flags.returnHold = returnHold
        flags.status = status
        flags.userspace = userspace ? true : nil
        flags.firstSubflow = firstSubflow
        let settings = flags.merged(over: try loadSettings(common.config, as: PathManagerSettings.self))
        Bootstrap.run(logLevel: try logLevel(common.logLevel, file: settings.logLevel))
        try asValidation { try PathManagerDaemon.run(settings, metrics: Bootstrap.metricsText) }
    }
}
