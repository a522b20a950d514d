import NIOCore
import NIOPosix

/// A minimal HTTP/1.0 client for a daemon's status endpoint (`edgepool handlespace`).
public enum StatusClient {
    /// GETs `path`; returns the body of a 200 answer.
    /// - Throws: ``StatusClientError`` for another status, NIO's errors for the connection.
    public static func get(_ endpoint: Endpoint, path: String) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(3))
            .connect(to: endpoint.socketAddress()).get()
        let promise = channel.eventLoop.makePromise(of: String.self)
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise)) }.get()
        try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n")).get()
        let response = try await promise.futureResult.get()
        guard let split = response.range(of: "\r\n\r\n") else { throw ChannelError.eof }
        let statusLine = response.prefix { $0 != "\r" }
        guard statusLine.contains(" 200 ") else { throw StatusClientError(statusLine: String(statusLine)) }
        return String(response[split.upperBound...])
    }
}

/// A status endpoint answered with something other than 200.
public struct StatusClientError: Error, CustomStringConvertible, Sendable {
    public var statusLine: String
    public var description: String { "HTTP \(statusLine)" }
}

/// Collects a whole HTTP/1.0 response (the server closes after it).
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
