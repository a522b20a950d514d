import ArgumentParser
import Foundation
import RSerPool

struct HandlespaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handlespace",
        abstract: "Print a registrar's pools and pool elements (from its --status endpoint).",
        discussion: HelpText.reflow("""
        Start the registrar with --status HOST:PORT, then:
          edgepool handlespace --status 127.0.0.1:9090
        """)
    )

    @Option(help: ArgumentHelp("The registrar's status endpoint.", valueName: "host:port"))
    var status: Endpoint = Endpoint(host: "127.0.0.1", port: 9090)

    @Flag(help: "Print the raw JSON.")
    var json = false

    func run() async throws {
        let body: String
        do {
            body = try await StatusClient.get(status, path: "/handlespace")
        } catch {
            printError("edgepool handlespace: cannot read \(status)/handlespace: \(error)")
            throw ExitCode(1)
        }
        if json {
            print(body)
            return
        }
        let snapshot = try JSONDecoder().decode(HandlespaceSnapshot.self, from: Data(body.utf8))
        print(snapshot.report)
    }
}
