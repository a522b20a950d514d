import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Joins two channels: what one reads, the other writes. Reading from a side stops while the
/// other side's write buffer is above its high-water mark (so at most that plus one read is
/// queued per direction), a half-close is passed on as a half-close, and the pair closes
/// when both directions are done, when either side fails, or when neither side has read for
/// the idle timeout (the loop's `IdleSweep` watches the client side's handler).
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var readPending = false
    private(set) var inputClosed = false
    private let connection: GatewayConnection
    private let idleSweep: IdleSweep
    /// The sweep's tick at the last read of either side (kept on both handlers).
    var lastActiveTick: UInt64 = 0

    private init(connection: GatewayConnection, idleSweep: IdleSweep) {
        self.connection = connection
        self.idleSweep = idleSweep
    }

    /// Installs a relay between `client` and `upstream` (both on the same event loop) after
    /// writing bytes either side sent ahead of the relay (early data). Must run on that loop.
    static func join(client: Channel, upstream: Channel, connection: GatewayConnection,
                     clientEarlyData: ByteBuffer? = nil, upstreamEarlyData: ByteBuffer? = nil, idleSweep: IdleSweep) throws {
        let clientSide = RelayHandler(connection: connection, idleSweep: idleSweep)
        let upstreamSide = RelayHandler(connection: connection, idleSweep: idleSweep)
        clientSide.partner = upstreamSide
        upstreamSide.partner = clientSide
        if let clientEarlyData, clientEarlyData.readableBytes > 0 { upstream.write(clientEarlyData, promise: nil) }
        if let upstreamEarlyData, upstreamEarlyData.readableBytes > 0 { client.write(upstreamEarlyData, promise: nil) }
        client.flush()
        upstream.flush()
        connection.markRelaying()
        try client.pipeline.syncOperations.addHandler(clientSide)
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        // A side that closed before the relay was in place (its channelInactive came before
        // these handlers; a closed pipeline never calls handlerRemoved): end the other one now,
        // rather than leave it, and a sweep entry, until the idle timeout.
        guard client.isActive, upstream.isActive else {
            connection.fail("failed", "a side closed before relaying began")
            clientSide.closeAll()
            return
        }
        idleSweep.track(clientSide, id: connection.id)
        client.read()
        upstream.read()
    }

    /// Replaces the front end that owns `context` with a relay to `upstream`: the usual end of
    /// a handshake. Bytes the exit gateway sent after its status (entry mode) go first.
    static func takeOver(from context: ChannelHandlerContext, upstream: Channel, connection: GatewayConnection,
                         clientEarlyData: ByteBuffer?, idleSweep: IdleSweep) {
        let client = context.channel
        guard client.isActive else {
            upstream.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        do {
            try join(client: client, upstream: upstream, connection: connection, clientEarlyData: clientEarlyData,
                     upstreamEarlyData: UpstreamHolds.release(from: upstream), idleSweep: idleSweep)
        } catch {
            connection.fail("failed", "cannot start relaying: \(error)")
            client.close(promise: nil)
            upstream.close(promise: nil)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleSweep.untrack(id: connection.id)
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActiveTick = idleSweep.tick
        partner?.lastActiveTick = lastActiveTick
        partner?.forward(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, let partnerContext = partner.context, !partnerContext.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.closeAll()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            connection.sampleCounts()
            if let partner, partner.inputClosed {
                closeAll()
            } else {
                partner?.closeOutput()
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE {
            // A reset ends the connection like a close; not a gateway failure.
        } else {
            connection.fail("failed", "\(error)")
        }
        closeAll()
    }

    /// The idle sweep found neither side read for the idle timeout.
    func closeIdle() {
        connection.fail("timeout", "idle for longer than the idle timeout")
        closeAll()
    }

    private func forward(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The other side sent FIN: flush what is queued and send FIN here.
    private func closeOutput() {
        guard let context else { return }
        context.flush()
        let channel = context.channel
        let partnerChannel = partner?.context?.channel
        context.close(mode: .output).assumeIsolated().whenFailure { _ in
            channel.close(promise: nil)
            partnerChannel?.close(promise: nil)
        }
    }

    private func closeAll() {
        connection.sampleCounts()
        context?.close(promise: nil)
        partner?.context?.close(promise: nil)
    }
}

/// A handler that holds what the upstream sends before the relay is in place (the exit's
/// status reader, a held preconnected backend connection). At most one sits on an upstream
/// channel, under one name, so the relay finds it with one lookup (`UpstreamHolds`).
protocol UpstreamHold: ChannelHandler {
    /// Called once the relay is in place (on the channel's loop): the bytes held so far; the
    /// handler steps aside now or, if it still waits for something, later by itself.
    func releaseToRelay(_ channel: Channel) -> ByteBuffer?
}

/// Installing and releasing an upstream channel's hold.
enum UpstreamHolds {
    static let name = "edgepool.upstream-hold"

    static func install(_ hold: some UpstreamHold, on channel: Channel) throws {
        try channel.pipeline.syncOperations.addHandler(hold, name: name)
    }

    /// The held bytes of whatever hold the channel has, or nil when it has none.
    static func release(from channel: Channel) -> ByteBuffer? {
        guard let context = try? channel.pipeline.syncOperations.context(name: name),
              let hold = context.handler as? any UpstreamHold else { return nil }
        return hold.releaseToRelay(channel)
    }
}
