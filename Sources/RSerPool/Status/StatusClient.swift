import NIOCore
import NIOPosix
import RSerPoolCore

/// A minimal HTTP/1.0 client for a daemon's status endpoint (`edgepool handlespace`) and a
/// proxy PE's metrics URL: one GET, the whole answer read until the server closes.
public enum StatusClient {
    /// Bytes of an answer read at most by default.
    public static let maximumResponseBytes = 16 * 1024 * 1024

    /// GETs `path`; returns the body of a 200 answer.
    /// - Parameters:
    ///   - endpoint: the server (an address, or a name resolved here).
    ///   - path: the request target, e.g. `/metrics`.
    ///   - timeout: for the connection, and for the whole answer.
    ///   - maximumBytes: a longer answer fails (``StatusClientError``).
    /// - Throws: ``StatusClientError`` for another status or an answer that is not HTTP or too
    ///   long or not whole within `timeout`, NIO's errors for the connection.
    public static func get(_ endpoint: Endpoint, path: String, timeout: TimeAmount = .seconds(3),
                           maximumBytes: Int = maximumResponseBytes) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(to: endpoint.socketAddress()).get()
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, maximumBytes: maximumBytes))
        }.get()
        // Past the deadline the collector fails (and closes): a partial answer is no answer.
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            channel.pipeline.fireErrorCaught(StatusClientError(statusLine: "no whole answer within \(timeout)"))
        }
        defer { deadline.cancel() }
        try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\nConnection: close\r\n\r\n")).get()
        let response = try await promise.futureResult.get()
        let status: Int
        switch HTTPHealthCheck.verdict(Array(response.prefix(HTTPHealthCheck.maximumStatusLineBytes))) {
        case .passed(let code): status = code
        case .failed(let reason): throw StatusClientError(statusLine: reason)
        case .incomplete: throw ChannelError.eof
        }
        guard status == 200 else { throw StatusClientError(statusLine: "\(status)") }
        let separator = Array("\r\n\r\n".utf8)
        guard let split = response.firstRange(of: separator) else { throw ChannelError.eof }
        return String(decoding: response[split.upperBound...], as: UTF8.self)
    }
}

/// A status endpoint answered with something other than 200 (or not with HTTP at all).
public struct StatusClientError: Error, CustomStringConvertible, Sendable {
    public var statusLine: String
    public var description: String { "HTTP \(statusLine)" }
}

/// Collects a whole HTTP/1.0 response (the server closes after it), failing past `maximumBytes`.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var received: [UInt8] = []
    private let promise: EventLoopPromise<[UInt8]>
    private let maximumBytes: Int
    private var done = false

    init(promise: EventLoopPromise<[UInt8]>, maximumBytes: Int) {
        self.promise = promise
        self.maximumBytes = maximumBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let chunk = unwrapInboundIn(data)
        guard received.count + chunk.readableBytes <= maximumBytes else {
            done = true
            promise.fail(StatusClientError(statusLine: "answer longer than \(maximumBytes) bytes"))
            context.close(promise: nil)
            return
        }
        received += chunk.readableBytesView
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.succeed(received)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !done {
            done = true
            promise.fail(error)
        }
        context.close(promise: nil)
    }
}
