import ArgumentParser
import Foundation
import Logging
import RSerPool
import RSerPoolWire

struct RegistrarOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Registrar to ask; repeat for fallbacks. [default: 127.0.0.1:3863]", valueName: "host:port"))
    var registrar: [Endpoint] = []

    @Option(help: "Transport to the registrar: mptcp (falls back to tcp) or tcp.")
    var transport: TransportProtocol = .mptcp

    @Option(help: ArgumentHelp("Also find registrars by their Server Announces on this group (e.g. 239.0.0.50:3863).", valueName: "group:port"))
    var announce: Endpoint?

    @Option(help: ArgumentHelp("Local address of the interface to hear announces on.", valueName: "address"))
    var announceInterface: String?

    @OptionGroup var tls: RegistrarTLSOptions

    func list() throws -> RegistrarList {
        try asValidation {
            try RegistrarList.fromSettings(registrar, transport: transport, announce: announce, announceInterface: announceInterface)
                .withTLS(ca: tls.tlsCa, certificate: tls.tlsCertificate, key: tls.tlsKey)
        }
    }
}

/// ASAP over TLS toward registrars (PEs and PUs).
struct RegistrarTLSOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Talk to registrars over TLS 1.3, trusting this CA (PEM); the registrar's certificate must name its address.", valueName: "file"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("Present this certificate chain to registrars that require one (PEM).", valueName: "file"))
    var tlsCertificate: String?

    @Option(help: ArgumentHelp("The private key of --tls-certificate (PEM).", valueName: "file"))
    var tlsKey: String?
}

struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Ask a registrar for the PEs of a pool (ASAP Handle Resolution) and print them.",
        discussion: HelpText.reflow("""
        The registrar selects the PEs by the pool's policy, so repeated resolutions of a
        round-robin pool rotate. Exit status 0 with at least one PE, 2 for an unknown pool,
        1 when no registrar answered.

        Example: edgepool resolve --pool EchoPool --count 5
        """)
    )

    @OptionGroup var registrars: RegistrarOptions

    @Option(help: "The pool handle.")
    var pool: String = "EchoPool"

    @Option(help: "How many PEs to ask for (Handle Resolution Option); default: the registrar's (3).")
    var count: Int?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .warning

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let user = PoolUser(registrars: try registrars.list())
        defer { Task { await user.shutdown() } }
        let elements: [PoolElementParameter]
        do {
            elements = try await user.resolve(PoolHandle(pool), maximumCount: count)
        } catch let error as PoolUserError where error.code == .unknownPoolHandle {
            printError("edgepool resolve: the registrar knows no pool '\(pool)'")
            throw ExitCode(2)
        } catch {
            printError("edgepool resolve: \(error)")
            throw ExitCode(1)
        }
        if json {
            let rows = elements.map { ["identifier": "\($0.identifier)", "home": "\($0.homeRegistrar)", "transport": "\($0.userTransport)",
                                       "policy": "\($0.policy)"] }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("pool \(pool): \(elements.count) pool element(s)")
            for element in elements {
                print("  \(element.identifier)  \(element.userTransport)  \(element.policy)  home \(element.homeRegistrar)")
            }
        }
        await user.shutdown()
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
