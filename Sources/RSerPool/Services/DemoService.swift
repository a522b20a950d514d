import NIOCore
import NIOConcurrencyHelpers
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The reference implementation's demo services, for trying pools out: Echo (RFC 862),
/// Discard (RFC 863) and Daytime (RFC 867), over TCP or MPTCP.
public enum DemoService: String, Sendable, CaseIterable, Codable {
    case echo, discard, daytime

    /// Starts the service. `onLoadChange` gets the number of open sessions whenever it changes
    /// (a PE turns that into its policy load).
    public func start(on address: SocketAddress, transport: TransportProtocol, group: EventLoopGroup,
                      onSessionCountChange: (@Sendable (Int) -> Void)? = nil) async throws -> DemoServer {
        let counter = SessionCounter(onChange: onSessionCountChange)
        let service = self
        let listener = try await StreamTransport.bind(address, transport: transport, group: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(DemoServiceHandler(service: service, counter: counter))
                counter.track(channel)
            }
        }.channel
        return DemoServer(listener: listener, counter: counter)
    }
}

/// A running demo service: its listener and its open sessions.
public final class DemoServer: Sendable {
    public let listener: Channel
    fileprivate let counter: SessionCounter

    fileprivate init(listener: Channel, counter: SessionCounter) {
        self.listener = listener
        self.counter = counter
    }

    public var localAddress: SocketAddress? { listener.localAddress }
    /// Sessions open now.
    public var sessions: Int { counter.current }
    /// Sessions accepted since the start.
    public var sessionsServed: Int { counter.total }

    /// Closes the listener and every open session (what a crash looks like to clients).
    public func close() async {
        try? await listener.close()
        for channel in counter.openChannels() { try? await channel.close() }
    }
}

/// Counts open sessions across event loops.
final class SessionCounter: Sendable {
    private struct State {
        var current = 0
        var total = 0
        var channels: [ObjectIdentifier: Channel] = [:]
    }
    private let state = NIOLockedValueBox(State())
    private let onChange: (@Sendable (Int) -> Void)?
    init(onChange: (@Sendable (Int) -> Void)?) { self.onChange = onChange }

    var current: Int { state.withLockedValue { $0.current } }
    var total: Int { state.withLockedValue { $0.total } }
    func openChannels() -> [Channel] { state.withLockedValue { Array($0.channels.values) } }

    func track(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.channels[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = self.state.withLockedValue { $0.channels.removeValue(forKey: key) } }
    }

    func add(_ delta: Int) {
        let now = state.withLockedValue { value in
            value.current += delta
            if delta > 0 { value.total += delta }
            return value.current
        }
        onChange?(now)
    }
}

final class DemoServiceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let service: DemoService
    private let counter: SessionCounter

    init(service: DemoService, counter: SessionCounter) {
        self.service = service
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        counter.add(1)
        if service == .daytime {
            var buffer = context.channel.allocator.buffer(capacity: 32)
            buffer.writeString(Self.daytime() + "\r\n")
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.add(-1)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard service == .echo else { return }
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if service == .echo { context.flush() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    static func daytime() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%A, %B %d, %Y %H:%M:%S-UTC", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
