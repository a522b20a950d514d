import ArgumentParser
import PathManager
import PathManagerService
import RSerPool
import Foundation
import Logging
import ProcessSupport
import RSerPoolWire
import Synchronization

struct PathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "EdgePool's MPTCP path manager: paths retired at once when they fail, restored with fresh subflows when they return.",
        discussion: HelpText.reflow("""
        Talks to the kernel's mptcp_pm generic netlink family of the current network
        namespace, like `ip mptcp endpoint`. Changing endpoints needs CAP_NET_ADMIN.
          edgepool paths run --path wan1=192.0.2.2 --path wan2=198.51.100.2,backup --probe 203.0.113.1:9
          edgepool paths endpoints
          edgepool paths endpoint add 192.0.2.2 --id 2 --flags subflow --dev wan2
          edgepool paths endpoint backup 2
          edgepool paths endpoint delete 2
        """),
        subcommands: [PathsRunCommand.self, PathsEndpointsCommand.self, PathsEndpointCommand.self]
    )
}

struct PathsEndpointsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "endpoints", abstract: "List the in-kernel PM's endpoints.")

    func run() throws {
        let manager = try kernelPathManager()
        for endpoint in try manager.endpoints().sorted(by: { $0.id < $1.id }) { print(describe(endpoint)) }
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
            let endpointFlags: MPTCPPathManager.EndpointFlags
            do { endpointFlags = try .init(parsing: flags) } catch { throw ValidationError("\(error)") }
            var index: Int32 = 0
            if let dev {
                index = Int32(if_nametoindex(dev))
                guard index > 0 else { throw ValidationError("no interface '\(dev)'") }
            }
            try kernelPathManager().add(MPTCPPathManager.Endpoint(id: id, address: ip, port: port, flags: endpointFlags, interfaceIndex: index))
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
    do {
        return try KernelPathManager()
    } catch {
        throw ValidationError("\(error)")
    }
}

private func describe(_ endpoint: MPTCPPathManager.Endpoint) -> String {
    var text = endpoint.description
    if endpoint.interfaceIndex != 0 {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        text += " dev " + (if_indextoname(UInt32(endpoint.interfaceIndex), &name) != nil ? String(cString: name) : "#\(endpoint.interfaceIndex)")
    }
    return text
}

/// Set by SIGTERM/SIGINT; the daemon's loop looks at it every turn.
private let stopRequested = Atomic<Bool>(false)

struct PathsRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Manage this namespace's MPTCP paths (in-kernel PM, or --userspace) until SIGTERM.",
        discussion: HelpText.reflow("""
        Each --path is IF=ADDR with options after commas: backup (its subflows are used
        only while no active path works), noprobe (the link state alone decides), id=N
        (the endpoint id, default its position), port=P, signal, fullmesh (subflows to
        every address the peer announced, not only the connection's). A path whose link goes
        down, whose probes go unanswered (3 in a row), is retired at once: its endpoint is
        deleted, its subflows close on every connection. When it is good again (2 answered
        probes and a 100 ms hold that doubles while it flaps) its endpoint is added back:
        the kernel opens a fresh subflow on every connection. Probes are TCP handshakes from
        the path's address to --probe (a closed port on the peer answers with a reset).
        On SIGTERM every endpoint is put back for the kernel's own PM.
          edgepool paths run --path wan1=10.0.1.2 --path wan2=10.0.2.2 --probe 10.0.9.1:9
          edgepool paths run --path c2=10.78.2.1,noprobe
        """)
    )

    @Option(name: .customLong("path"), help: ArgumentHelp("A path: IF=ADDR[,backup][,noprobe][,id=N][,port=P][,signal]; repeatable.", valueName: "path"))
    var paths: [String] = []

    @Option(help: ArgumentHelp("Where the probes go (ADDR:PORT; [v6]:PORT).", valueName: "address:port"))
    var probe: String?

    @Option(help: "Time between probes of a path. [default: 100ms]") var probeInterval: Duration?
    @Option(help: "A probe unanswered this long failed; longer than the slowest path's round trip. [default: 300ms]") var probeTimeout: Duration?
    @Option(help: "How long a returning path must stay good before it is used (doubled while it flaps). [default: 100ms]") var returnHold: Duration?
    @Option(help: ArgumentHelp("HTTP address for /metrics (off unless given).", valueName: "host:port"))
    var status: Endpoint?
    @Flag(help: "Use the kernel's userspace PM (net.mptcp.pm_type=1): subflows per connection from every path to every address the peer announced, not endpoints.")
    var userspace = false
    @Option(help: "Log level (logs go to stderr).") var logLevel: Logger.Level = .info

    func run() throws {
        let parsed: [PathManagerConfiguration.Path]
        let target: PathManagerConfiguration.ProbeTarget?
        do {
            parsed = try paths.enumerated().map { try PathManagerConfiguration.Path(parsing: $0.element, endpointID: UInt8(min($0.offset + 1, 255))) }
            target = try probe.map { try PathManagerConfiguration.ProbeTarget(parsing: $0) }
        } catch {
            throw ValidationError("\(error)")
        }
        var configuration = PathManagerConfiguration(paths: parsed, probeTarget: target)
        if let v = probeInterval { configuration.probeInterval = v.amount }
        if let v = probeTimeout { configuration.probeTimeout = v.amount }
        if let v = returnHold { configuration.health.returnHoldTime = v.amount }
        if userspace { configuration.kernelManager = .userspace }
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        Bootstrap.run(logLevel: logLevel)
        let daemon: PathManagerDaemon
        let summary: String
        do {
            daemon = try PathManagerDaemon(configuration: configuration, logger: Logger(label: "edgepool.paths"))
            summary = try daemon.start()
        } catch {
            throw ValidationError("\(error)")
        }
        if let status {
            // The daemon's loop holds this thread; the status server runs on NIO's.
            let started = DispatchSemaphore(value: 0)
            let failure = Mutex<String?>(nil)
            Task {
                do {
                    _ = try await StatusServer.start(on: status.socketAddress(), routes: ["/metrics": { ("text/plain; version=0.0.4", Bootstrap.metricsText()) }])
                } catch {
                    failure.withLock { $0 = "\(error)" }
                }
                started.signal()
            }
            started.wait()
            if let reason = failure.withLock({ $0 }) { throw ValidationError("cannot serve /metrics on \(status): \(reason)") }
        }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        ReadyLine(daemon: "paths", ["managing": summary]).announce()
        daemon.run { stopRequested.load(ordering: .relaxed) }
    }
}
