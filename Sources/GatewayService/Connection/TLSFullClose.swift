import NIOCore

/// Makes a full close of an encrypted pair connection end when the other gateway answers it,
/// not at NIOSSL's shutdown timeout. Sits just above the TLS handler.
///
/// Pair channels allow half-closure (a client's FIN crosses the pair as the TLS stream's
/// close_notify). NIOSSL reads that option at each close_notify it receives: while half-closure
/// is allowed, a close_notify that arrives after this end has begun its own close is taken as
/// a half-close, and the close goes on waiting — 5 s, `TLSConfiguration.shutdownTimeout` —
/// holding both sockets and a place under the per-client cap. A full close wants no further
/// input, so this handler turns half-closure off as the close passes: the peer's close_notify
/// (or its FIN) then completes the shutdown at once.
final class TLSFullClose: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all {
            try? context.channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: false)
        }
        context.close(mode: mode, promise: promise)
    }
}
