import ArgumentParser
import Foundation
import Logging
import NIOCore
import RSerPool
import RSerPoolWire

struct PoolUserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pu",
        abstract: "Run a pool user (PU) of an echo pool: send requests, fail over when a PE dies.",
        discussion: HelpText.reflow("""
        Each request selects a PE (cached handle resolution, the pool's policy), connects,
        sends --message and waits for the echo. A PE that refuses or breaks is reported
        unreachable to the registrar and the request goes to the next PE. One line per request:
          request 3: $1a2b3c4d 127.0.0.1:40001 2.1 ms
        Exit status 0 when every request was answered, 1 otherwise.

        With --csp the user sends Component Status reports (its requests, the PE it
        talks to) to rsplib's monitor, and a final one when it ends.

        Example: edgepool pu --pool EchoPool --requests 20 --interval 200ms
        """),
        aliases: ["connect"]
    )

    @OptionGroup var registrars: RegistrarOptions

    @Option(help: "The pool handle.")
    var pool: String = "EchoPool"

    @Option(help: "How many requests (0: until interrupted).")
    var requests: Int = 10

    @Option(help: "Pause between requests.")
    var interval: Duration = Duration(.milliseconds(200))

    @Option(help: "The request payload.")
    var message: String = "hello, pool"

    @Option(help: "PEs to try per request before giving up.")
    var attempts: Int = 3

    @Option(help: "How long a handle resolution is reused.")
    var cacheTimeout: Duration = Duration(.seconds(1))

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .warning

    @OptionGroup var csp: ComponentStatusOptions

    func run() async throws {
        Bootstrap.run(logLevel: logLevel)
        let user = PoolUser(registrars: try registrars.list(), staleCacheTimeout: cacheTimeout.amount)
        let status = PoolUserStatus(pool: PoolHandle(pool))
        let (pool, message, requests, interval, attempts) = (PoolHandle(pool), message, requests, interval.amount, attempts)
        let (number, failures) = try await status.reporting(to: csp.csp, interval: csp.cspInterval, logger: Logger(label: "edgepool.pu")) {
            await EchoExchange.series(user: user, handle: pool, payload: message, count: requests, interval: interval, attempts: attempts) { number, outcome in
                status.record(outcome)
                switch outcome {
                case .answered(let element, let milliseconds):
                    print("request \(number): \(element.identifier) \(element.userTransport) \(String(format: "%.1f", milliseconds)) ms")
                case .wrongPayload(let element): print("request \(number): \(element.identifier) answered a different payload")
                case .failed(let error): print("request \(number): failed: \(error)")
                }
                fflush(nil)
            }
        }
        await user.shutdown()
        print("\(number - failures) answered, \(failures) failed")
        if failures > 0 { throw ExitCode(1) }
    }
}
