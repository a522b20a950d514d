import ArgumentParser
import PathManager
import PathManagerService
import Foundation
import RSerPoolWire

struct PathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "EdgePool's MPTCP path manager (first part: the in-kernel PM's endpoints over netlink).",
        discussion: """
        Talks to the kernel's mptcp_pm generic netlink family of the current network
        namespace, like `ip mptcp endpoint`. Changing endpoints needs CAP_NET_ADMIN.
          edgepool paths endpoints
          edgepool paths endpoint add 192.0.2.2 --id 2 --flags subflow --dev wan2
          edgepool paths endpoint backup 2
          edgepool paths endpoint delete 2
        """,
        subcommands: [PathsEndpointsCommand.self, PathsEndpointCommand.self]
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
            var endpointFlags = MPTCPPathManager.EndpointFlags()
            for name in flags.split(separator: ",") {
                switch name.trimmingCharacters(in: .whitespaces) {
                case "signal": endpointFlags.insert(.signal)
                case "subflow": endpointFlags.insert(.subflow)
                case "backup": endpointFlags.insert(.backup)
                case "fullmesh": endpointFlags.insert(.fullmesh)
                case let other: throw ValidationError("unknown endpoint flag '\(other)' (signal, subflow, backup, fullmesh)")
                }
            }
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
    var flags: [String] = []
    for (flag, name) in [(MPTCPPathManager.EndpointFlags.signal, "signal"), (.subflow, "subflow"), (.backup, "backup"), (.fullmesh, "fullmesh"), (.implicit, "implicit")]
        where endpoint.flags.contains(flag) { flags.append(name) }
    var text = "id \(endpoint.id) \(endpoint.address)"
    if endpoint.port != 0 { text += " port \(endpoint.port)" }
    text += " " + (flags.isEmpty ? "-" : flags.joined(separator: ","))
    if endpoint.interfaceIndex != 0 {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        text += " dev " + (if_indextoname(UInt32(endpoint.interfaceIndex), &name) != nil ? String(cString: name) : "#\(endpoint.interfaceIndex)")
    }
    return text
}
