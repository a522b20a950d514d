import Foundation
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle
import Testing

/// The library guide's example: the code it shows is the code compiled here, and it works
/// against a registrar and an echo server on loopback.
@Suite(.tags(.live), .timeLimit(.minutes(1))) struct LibraryExampleTests {
    static let guide = packageRoot.appendingPathComponent("docs/library/README.md")
    static let article = packageRoot.appendingPathComponent("Sources/RSerPool/RSerPool.docc/GettingStarted.md")
    static let example = packageRoot.appendingPathComponent("Tests/LiveTests/Examples/LibraryExample.swift")

    @Test func theGuideShowsTheCompiledExample() throws {
        let source = try String(contentsOf: Self.example, encoding: .utf8).components(separatedBy: "\n")
        let begin = try #require(source.firstIndex(of: "// example:begin")), end = try #require(source.firstIndex(of: "// example:end"))
        let compiled = source[(begin + 1)..<end].joined(separator: "\n")
        let guide = try String(contentsOf: Self.guide, encoding: .utf8)
        #expect(guide.contains("```swift\n" + compiled + "\n```"), "docs/library/README.md shows the lines of Examples/LibraryExample.swift")
        let article = try String(contentsOf: Self.article, encoding: .utf8)
        #expect(article.contains("```swift\n" + compiled + "\n```"), "the DocC getting-started article shows them too")
    }

    @Test func theExampleReachesThePoolAndDeregisters() async throws {
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        let registrar = Registrar(configuration: RegistrarServiceConfiguration(registrar: RegistrarConfiguration(identifier: RegistrarIdentifier(7)), listenAddresses: [loopback]))
        let registrarGroup = ServiceGroup(services: [registrar], logger: .init(label: "test"))
        async let registrarRun: Void = registrarGroup.run()
        let echo = try await DemoService.echo.start(on: loopback, transport: .tcp, group: MultiThreadedEventLoopGroup.singleton)
        let asap = try await registrar.listeningAddresses[0]

        let server = try #require(echo.localAddress)
        let reached = try await reachThePool(server: server, registrar: asap)
        #expect(try reached.userTransport.socketAddress() == server, "the user reached our server through the pool")
        try await eventually(timeout: 5, "the PE deregistered at the graceful shutdown") { try await registrar.snapshot().poolElementCount == 0 }
        await echo.close()
        await registrarGroup.triggerGracefulShutdown()
        try await registrarRun
    }
}
