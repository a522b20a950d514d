import NIOCore
import RSerPoolCore
import RSerPoolWire

/// Client side of the echo service (``DemoService/echo``): one request with failover, and a
/// session that holds its connection a while — what `edgepool pu` and `edgepool demo echo` do.
public enum EchoExchange {
    /// One echo exchange with failover: a PE that cannot be reached or breaks the session is
    /// reported unreachable and the request goes to the next one.
    public static func request(user: PoolUser, handle: PoolHandle, payload: String, attempts: Int,
                               timeout: TimeAmount = .seconds(2)) async throws -> (PoolElementParameter, String) {
        var lastError: Error = PoolUserError(.allPoolElementsFailed, "\(handle)")
        for _ in 0..<max(1, attempts) {
            let connection = try await user.connect(to: handle, attempts: attempts)
            do {
                let reply = try await exchange(connection.channel, payload: payload, timeout: timeout)
                return (connection.element, reply)
            } catch {
                lastError = error
                await user.reportUnreachable(handle, connection.element.identifier)
            }
        }
        throw lastError
    }

    /// What one request of ``series(user:handle:payload:count:interval:attempts:report:)`` got.
    public enum Outcome: Sendable {
        /// Answered by `element` with the same payload, after `milliseconds`.
        case answered(PoolElementParameter, milliseconds: Double)
        /// Answered by `element`, but not with the payload sent.
        case wrongPayload(PoolElementParameter)
        case failed(any Error)

        public var succeeded: Bool { if case .answered = self { true } else { false } }
    }

    /// `count` requests (0: until the task is cancelled), `interval` apart, each with failover;
    /// `report` hears each one's number and outcome. Returns (requests made, failed).
    public static func series(user: PoolUser, handle: PoolHandle, payload: String, count: Int, interval: TimeAmount, attempts: Int,
                              report: (Int, Outcome) -> Void) async -> (requests: Int, failed: Int) {
        var failures = 0, number = 0
        while count == 0 || number < count, !Task.isCancelled {
            number += 1
            let started = NIODeadline.now()
            let outcome: Outcome
            do {
                let (element, reply) = try await request(user: user, handle: handle, payload: payload, attempts: attempts)
                outcome = reply == payload ? .answered(element, milliseconds: Double((NIODeadline.now() - started).nanoseconds) / 1e6) : .wrongPayload(element)
            } catch {
                outcome = .failed(error)
            }
            if !outcome.succeeded { failures += 1 }
            report(number, outcome)
            if count == 0 || number < count { try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds)) }
        }
        return (number, failures)
    }

    /// Writes `payload` and collects the same number of bytes back.
    public static func exchange(_ channel: Channel, payload: String, timeout: TimeAmount) async throws -> String {
        let expected = payload.utf8.count
        let promise = channel.eventLoop.makePromise(of: String.self)
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(ReplyCollector(expected: expected, promise: promise)) }.get()
        let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(timeout)) }
        channel.writeAndFlush(ByteBuffer(string: payload), promise: nil)
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    /// Sends `payload`, waits for the echo, keeps the session open for `hold`, closes.
    /// False when the PE broke the session (crash): the caller retries elsewhere.
    public static func exchangeAndHold(_ channel: Channel, payload: String, hold: TimeAmount) async throws -> Bool {
        let promise = channel.eventLoop.makePromise(of: String.self)
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(ReplyCollector(expected: payload.utf8.count, promise: promise)) }.get()
        try await channel.writeAndFlush(ByteBuffer(string: payload)).get()
        let timer = channel.eventLoop.scheduleTask(in: .seconds(2)) { promise.fail(ChannelError.connectTimeout(.seconds(2))) }
        defer { timer.cancel() }
        guard (try? await promise.futureResult.get()) == payload else {
            channel.close(promise: nil)
            return false
        }
        let closed = channel.eventLoop.makePromise(of: Void.self)
        channel.closeFuture.cascade(to: closed)
        let holdTimer = channel.eventLoop.scheduleTask(in: hold) { closed.succeed(()) }
        try? await closed.futureResult.get()
        holdTimer.cancel()
        let brokenEarly = !channel.isActive
        try? await channel.close()
        return !brokenEarly
    }
}

/// Collects `expected` bytes of reply, or fails on close or error.
final class ReplyCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var buffer = ByteBuffer()
    private let expected: Int
    private let promise: EventLoopPromise<String>
    private var done = false

    init(expected: Int, promise: EventLoopPromise<String>) {
        self.expected = expected
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        if !done, buffer.readableBytes >= expected {
            done = true
            promise.succeed(buffer.readString(length: expected) ?? "")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !done {
            done = true
            promise.fail(error)
        }
        context.close(promise: nil)
    }
}
