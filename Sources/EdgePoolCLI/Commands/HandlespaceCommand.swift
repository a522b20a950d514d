import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import RSerPool

struct HandlespaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handlespace",
        abstract: "Print a registrar's pools and pool elements (from its --status endpoint).",
        discussion: """
        Start the registrar with --status HOST:PORT, then:
          edgepool handlespace --status 127.0.0.1:9090
        """
    )

    @Option(help: ArgumentHelp("The registrar's status endpoint.", valueName: "host:port"))
    var status: Endpoint = Endpoint(host: "127.0.0.1", port: 9090)

    @Flag(help: "Print the raw JSON.")
    var json = false

    func run() async throws {
        let body: String
        do {
            body = try await httpGet(status, path: "/handlespace")
        } catch {
            printError("edgepool handlespace: cannot read \(status)/handlespace: \(error)")
            throw ExitCode(1)
        }
        if json {
            print(body)
            return
        }
        let snapshot = try JSONDecoder().decode(HandlespaceSnapshot.self, from: Data(body.utf8))
        print("registrar \(snapshot.registrar): \(snapshot.pools.count) pool(s), \(snapshot.poolElementCount) pool element(s), \(snapshot.peers.count) peer(s)")
        for peer in snapshot.peers {
            print("  peer \(peer.identifier)  \(peer.transport ?? "?")  \(peer.state)  heard \(String(format: "%.1f", peer.silentSeconds)) s ago")
        }
        for pool in snapshot.pools {
            print("  \(pool.handle)  (\(pool.policy), \(pool.elements.count) PE)")
            for e in pool.elements {
                print("    \(e.identifier)  \(e.transport)  \(e.policy)  home \(e.home)  age \(String(format: "%.0f", e.ageSeconds)) s  selected \(e.selections)×")
            }
        }
    }
}

/// A minimal HTTP/1.0 GET on loopback-style endpoints (for the status server).
func httpGet(_ endpoint: Endpoint, path: String) async throws -> String {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connectTimeout(.seconds(3))
        .connect(to: endpoint.socketAddress()).get()
    let promise = channel.eventLoop.makePromise(of: String.self)
    try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise)) }.get()
    try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n")).get()
    let response = try await promise.futureResult.get()
    guard let split = response.range(of: "\r\n\r\n") else { throw ChannelError.eof }
    let statusLine = response.prefix { $0 != "\r" }
    guard statusLine.contains(" 200 ") else { throw ValidationError("HTTP \(statusLine)") }
    return String(response[split.upperBound...])
}

final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var buffer = ByteBuffer()
    private let promise: EventLoopPromise<String>
    init(promise: EventLoopPromise<String>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
    }
    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(buffer.readString(length: buffer.readableBytes) ?? "")
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
